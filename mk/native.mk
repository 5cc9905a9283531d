# mk/native.mk — checks of the C extension that `make test` runs before pytest:
#   native-asan  builds csrc/ with AddressSanitizer + UBSan (module _egw_native_asan in build/asan) and runs
#                the golden-byte tests, the extension smoke tests and the host dataplane tests against it
#   native-fuzz  feeds each C decoder (WireGuard genetlink dump, UAPI reply, rtnetlink dump) FUZZ_RUNS
#                mutated inputs under that ASan build (atheris, pinned; seeds = the golden corpora)
# Both take well under a minute warm. `make bench` (peer churn benchmark) lives in mk/bench.mk.

ASAN_DIR := build/asan
ASAN_LIB = $(shell gcc -print-file-name=libasan.so)
ASAN_ENV = EGW_NATIVE_MODULE=_egw_native_asan PYTHONPATH=$(ASAN_DIR):. LD_PRELOAD=$(ASAN_LIB) \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
ATHERIS_VERSION := 3.0.0
ATHERIS_STAMP := $(VENV)/.atheris-$(ATHERIS_VERSION)
FUZZ_RUNS ?= 30000

TEST_TOOLS += native-asan native-fuzz

.PHONY: native-asan native-fuzz

$(ASAN_DIR)/.built: $(wildcard csrc/*.c csrc/*.h) csrc/ffibuild.py | $(STAMP)
	@echo ">> building the extension with AddressSanitizer + UBSan ($(ASAN_DIR))"
	@$(PY) csrc/ffibuild.py --sanitize $(ASAN_DIR)
	@touch $@

$(ATHERIS_STAMP): | $(STAMP)
	@echo ">> pip install atheris==$(ATHERIS_VERSION) (fuzzing)"
	@$(PY) -m pip install -q atheris==$(ATHERIS_VERSION)
	@touch $@

native-asan: $(ASAN_DIR)/.built
	@echo ">> native tests under ASan/UBSan"
	@$(ASAN_ENV) $(PY) -c 'from egw.dataplane import _native; assert _native.MODULE == "_egw_native_asan", _native.MODULE'
	@$(ASAN_ENV) $(PY) -m pytest -q -p no:cacheprovider tests/native tests/unit/test_native.py tests/dataplane

native-fuzz: $(ASAN_DIR)/.built $(ATHERIS_STAMP)
	@for t in wg uapi rt; do \
	  echo ">> fuzz $$t decoder ($(FUZZ_RUNS) inputs, ASan)"; \
	  $(ASAN_ENV) $(PY) tests/native/fuzz_decoders.py $$t $(FUZZ_RUNS) -max_len=65536 -seed=1 \
	    > build/fuzz-$$t.log 2>&1 || { tail -40 build/fuzz-$$t.log; exit 1; }; \
	  tail -1 build/fuzz-$$t.log; \
	done
