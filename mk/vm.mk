# Kernel-tier VM image (tests/vm/runner.py): Debian's generic linux-image-6.1.0-*-amd64 fetched with
# apt-get download, extracted + depmod'ed, plus a busybox initramfs, cached outside the work tree in
# $EGW_VM_CACHE (default ~/.cache/egw/vm/<kver>/). Idempotent: a warm cache costs a second.
# When QEMU or the kernel package truly cannot be had it warns, and the kernel tests skip saying why.

TEST_TOOLS += vmimage

.PHONY: vmimage
vmimage: deps
	@$(PYTHON) -m tests.vm.runner prepare
