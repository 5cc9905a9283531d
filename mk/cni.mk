# Pod side: the compiled CNI front end `kube-egress-gateway-cni` (csrc/cni_shim/shim.c).
# Static so it starts fast and runs on any node whatever its libc; tests find it at $(CNI_SHIM).

CNI_SHIM := build/bin/kube-egress-gateway-cni
TEST_TOOLS += $(CNI_SHIM)

.PHONY: cni-shim
cni-shim: $(CNI_SHIM)

$(CNI_SHIM): csrc/cni_shim/shim.c
	@echo ">> building $@"
	@mkdir -p $(dir $@)
	@gcc -O2 -Wall -Wextra -Werror -static -o $@.tmp $< 2>/dev/null || gcc -O2 -Wall -Wextra -Werror -o $@.tmp $<
	@mv -f $@.tmp $@
