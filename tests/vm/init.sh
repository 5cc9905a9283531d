#!/bin/busybox sh
# PID 1 of the kernel-tier VM (see tests/vm/runner.py, which builds this into the initramfs).
#
# Loads the virtio/9p/overlay modules listed in /modules.list, mounts the host's / (9p, read-only)
# under a tmpfs overlay as the new root, bind-mounts the extracted kernel modules (9p share
# "modules") at /lib/modules/<kver> and the per-run writable share "results" at /run/egw-vm,
# then chroots and runs /run/egw-vm/cmd.sh. Its exit status goes to /run/egw-vm/rc and to the
# console as "EGW-VM-EXIT <rc>"; the VM then powers off. Any failure before the command prints
# "EGW-VM-INIT-FAILED <step>" so the host can report where the boot stopped.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

fail() {
    echo "EGW-VM-INIT-FAILED $*"
    poweroff -f
}

while read -r mod; do
    insmod "/modules/$mod" || fail "insmod $mod"
done < /modules.list

kver=$(uname -r)
opts=trans=virtio,version=9p2000.L,msize=512000
mkdir -p /host /ovl /newroot
mount -t 9p -o "$opts,ro,cache=loose" hostroot /host || fail "mount hostroot"
mount -t tmpfs -o mode=0755 ovl /ovl || fail "mount tmpfs overlay"
mkdir -p /ovl/upper /ovl/work
mount -t overlay -o lowerdir=/host,upperdir=/ovl/upper,workdir=/ovl/work overlay /newroot || fail "mount overlay"
r=/newroot
mount -t proc proc $r/proc || fail "mount proc"
mount -t sysfs sys $r/sys || fail "mount sys"
mount -t devtmpfs dev $r/dev || fail "mount dev"
mkdir -p $r/dev/pts $r/dev/shm $r/dev/net
# What kmod's static-nodes would create: opening it autoloads tun (wireguard-go needs it).
mknod -m 666 $r/dev/net/tun c 10 200
mount -t devpts devpts $r/dev/pts
mount -t tmpfs shm $r/dev/shm
mount -t tmpfs -o mode=0755 run $r/run || fail "mount run"
mkdir -p "$r/lib/modules/$kver" $r/run/egw-vm
mount -t 9p -o "$opts,ro" modules "$r/lib/modules/$kver" || fail "mount modules"
mount -t 9p -o "$opts" results $r/run/egw-vm || fail "mount results"
# The kernel's module auto-loading (request_module) runs /sbin/modprobe relative to the
# initramfs root, not our chroot: hand it on to the real modprobe inside the new root.
mkdir -p /sbin
printf '#!/bin/sh\nexec /bin/chroot /newroot /sbin/modprobe "$@"\n' > /sbin/modprobe
chmod 755 /sbin/modprobe
ip link set lo up
hostname egw-vm

echo "EGW-VM-START $(cut -d" " -f1 /proc/uptime)"
# egw_timeout=N on the kernel command line (the kernel hands unknown name=value pairs to init as
# environment) bounds the command even when nobody on the host is left to kill QEMU.
if [ "${egw_timeout:-0}" -gt 0 ]; then
    timeout -s KILL "$egw_timeout" chroot $r /bin/sh /run/egw-vm/cmd.sh < /dev/console > /dev/console 2>&1
else
    chroot $r /bin/sh /run/egw-vm/cmd.sh < /dev/console > /dev/console 2>&1
fi
rc=$?
echo "$rc" > $r/run/egw-vm/rc
sync
echo "EGW-VM-EXIT $rc"
poweroff -f
