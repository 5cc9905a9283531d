// wgctrl-bench: the upstream (kube-egress-gateway) way of programming peers, as a benchmark baseline.
//
// It reads a job file and, like upstream's daemon, uses wgctrl-go's ConfigureDevice for the peers
// (ReplaceAllowedIPs on every peer, Remove for removals; wgctrl itself splits >32 peers into one
// message per peer on the kernel backend) and vishvananda/netlink RouteReplace / RouteDel, one call per
// route, in the device's namespace. Only the work is timed (process start excluded: upstream is a
// long-running daemon). Output: one line "seconds=<float> peers=<n> routes=<n>".
//
// Job file, one item per line:  add <base64 key> <cidr>  |  del <base64 key> <cidr>  |  dump
// Usage: wgctrl-bench <ifname> <netns name or "-"> <job file>
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "wgctrl-bench:", err)
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: wgctrl-bench <ifname> <netns|-> <jobfile>")
		os.Exit(2)
	}
	ifname, nsName, jobPath := os.Args[1], os.Args[2], os.Args[3]
	f, err := os.Open(jobPath)
	must(err)
	var peers []wgtypes.PeerConfig
	var addRoutes, delRoutes []*net.IPNet
	dump := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 1 && fields[0] == "dump" {
			dump = true
			continue
		}
		if len(fields) != 3 {
			continue
		}
		key, err := wgtypes.ParseKey(fields[1])
		must(err)
		_, cidr, err := net.ParseCIDR(fields[2])
		must(err)
		if fields[0] == "del" {
			peers = append(peers, wgtypes.PeerConfig{PublicKey: key, Remove: true})
			delRoutes = append(delRoutes, cidr)
		} else {
			peers = append(peers, wgtypes.PeerConfig{PublicKey: key, ReplaceAllowedIPs: true, AllowedIPs: []net.IPNet{*cidr}})
			addRoutes = append(addRoutes, cidr)
		}
	}
	must(sc.Err())

	runtime.LockOSThread()
	var handle *netlink.Handle
	if nsName != "-" {
		ns, err := netns.GetFromName(nsName)
		must(err)
		handle, err = netlink.NewHandleAt(ns)
		must(err)
	} else {
		handle, err = netlink.NewHandle()
		must(err)
	}

	start := time.Now()
	client, err := wgctrl.New()
	must(err)
	if dump {
		_, err = client.Device(ifname)
		must(err)
	}
	if len(peers) > 0 {
		must(client.ConfigureDevice(ifname, wgtypes.Config{Peers: peers}))
	}
	if len(addRoutes)+len(delRoutes) > 0 {
		link, err := handle.LinkByName(ifname)
		must(err)
		for _, dst := range delRoutes {
			_ = handle.RouteDel(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: dst, Scope: netlink.SCOPE_LINK})
		}
		for _, dst := range addRoutes {
			must(handle.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: dst, Scope: netlink.SCOPE_LINK}))
		}
	}
	elapsed := time.Since(start).Seconds()
	client.Close()
	fmt.Printf("seconds=%.6f peers=%d routes=%d\n", elapsed, len(peers), len(addRoutes)+len(delRoutes))
}
