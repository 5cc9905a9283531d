/*
 * egw_nl.h — the contract between egw's Python layer and its small C core.
 *
 * This header is both the C interface and the cffi cdef: csrc/ffibuild.py feeds the
 * text between the EGW_CDEF_BEGIN and EGW_CDEF_END markers to cffi verbatim, so the
 * Python binding can never drift from the C code.
 *
 * Conventions that hold for every call
 * ====================================
 *   - A call returns 0 (or a non-negative count / file descriptor) on success and
 *     -errno on failure. Nothing is reported through errno itself.
 *   - No call keeps global state; every call is safe to run from several threads
 *     at once with the GIL released (cffi releases it around each call). A netlink
 *     socket returned by egw_nl_open is the caller's state: use it from one thread
 *     at a time.
 *   - Calls that may fail inside the kernel take a `struct egw_err *` (may be NULL).
 *     On failure it holds the -errno, the index of the item (peer, op) the error is
 *     attributed to (-1 if none), and the kernel's extended-ACK text (NUL-terminated,
 *     possibly empty). Private keys are never copied into it.
 *
 * Network namespaces
 * ==================
 *   Namespace names are the file names under /run/netns. A name is accepted only if it
 *   is 1..NAME_MAX bytes of [A-Za-z0-9_.-] and is not "." or "..": anything else is
 *   -EINVAL before any file is touched.
 *   A netlink socket stays bound to the namespace it was created in, so the only call
 *   that enters a namespace is egw_nl_open: it switches the calling thread into the
 *   target (ns_fd >= 0, else ns_name != NULL, else stay), creates the socket, and
 *   switches back before returning on every path. All other calls act in the socket's
 *   namespace. No Python code ever runs inside a foreign namespace.
 *
 *   egw_ns_open(name)        open /run/netns/<name> read-only (O_CLOEXEC); returns the fd.
 *   egw_ns_open_current()    open the calling thread's current network namespace; returns the fd.
 *   egw_ns_same(fd_a, fd_b)  1 when both fds refer to the same namespace, 0 when not.
 *   egw_ns_name_valid(name)  1 when name passes the rule above, 0 when not (no I/O).
 *
 * Netlink sockets
 * ===============
 *   egw_nl_open(ns_fd, ns_name, protocol)  a NETLINK_ROUTE (0) or NETLINK_GENERIC (16)
 *       socket in the target namespace, with extended ACKs on, 4 MiB buffers (forced
 *       when privileged), O_CLOEXEC. Returns the fd; close it with close(2).
 *   egw_genl_family(fd, name)  the numeric id of a generic-netlink family, -ENOENT when the
 *       family is absent (e.g. no WireGuard module: the caller falls back to the UAPI backend).
 *
 * WireGuard (generic netlink, kernel backend)
 * ===========================================
 *   A device is one struct egw_wg_device plus a flat array of peers; each peer owns the
 *   slice aips[first_aip .. first_aip + n_aips) of a flat allowed-IP array. `flags` says
 *   which optional fields are present (EGW_*_HAS_*) and which operation is wanted
 *   (EGW_WGDEV_REPLACE_PEERS, EGW_WGPEER_REMOVE_ME, _REPLACE_AIPS, _UPDATE_ONLY).
 *
 *   egw_wg_get(fd, family, ifname, dev, peers, &n_peers, aips, &n_aips, err)
 *       Dumps the device. *n_peers / *n_aips are capacities on entry and counts on return.
 *       Multi-part dumps are coalesced (a peer continued in the next message is merged).
 *       An interrupted dump (NLM_F_DUMP_INTR: the device changed meanwhile) is restarted
 *       up to EGW_DUMP_RETRIES times, then -EAGAIN: a partial dump would make a diff re-add
 *       peers needlessly. When the arrays are too small the dump is still read to the end
 *       and -ENOSPC is returned with the needed counts in *n_peers / *n_aips.
 *   egw_wg_set(fd, family, dev, peers, n_peers, aips, opts, stats, results, err)
 *       Applies the device attributes (first message only) and the peers, in array order.
 *       Peers are packed into messages whose peers nest stays <= opts->max_nest bytes
 *       (<= 65535: the nest length is 16 bits); a peer whose allowed IPs do not fit is
 *       continued in the next message with only its key and the remaining IPs (REPLACE
 *       only on its first fragment). A message carries at most opts->removal_budget
 *       REMOVE_ME peers and such a message is sent alone, because the kernel holds RTNL
 *       for a whole message and each removal costs grace periods. Other messages are
 *       concatenated into one sendmsg up to opts->max_send bytes; only the last message
 *       of a sendmsg asks for an ACK (errors are reported regardless), and failures are
 *       attributed by sequence number. The kernel keeps processing the next messages
 *       after a failed one, so a batch can be partially applied: results[i] (may be
 *       NULL) is 0 for applied peers, -errno for the peer the failure is attributed to
 *       (via the ext-ACK offset when the kernel gives one, else every peer of the failed
 *       message), and -ECANCELED for the peers after it in the same message. Returns 0 or
 *       the first error. stats (may be NULL) counts messages, sendmsg calls, bytes and the
 *       longest sendmsg in nanoseconds (≈ RTNL hold).
 *   egw_wg_build(buf, cap, family, seq, dev, peers, n, aips, opts, &n_msgs)  the pure encoder
 *       behind egw_wg_set: writes every SET message (sequence numbers seq, seq+1, ...; no
 *       NLM_F_ACK) into buf and returns the byte length, or -ENOSPC when buf is too small.
 *   egw_wg_parse(buf, len, dev, peers, &n, aips, &n)  the pure decoder behind egw_wg_get: a
 *       concatenation of GET_DEVICE reply messages (other types are skipped).
 *
 * WireGuard (userspace API, wireguard-go backend)
 * ===============================================
 *   egw_uapi_set(sock_path, dev, peers, n_peers, aips, stats, err)  one `set=1`
 *       transaction on the unix socket (keys in hex), whatever the number of peers.
 *       The reply's errno=N becomes -N. One transaction is counted as one message.
 *   egw_uapi_get(sock_path, dev, peers, &n_peers, aips, &n_aips, err)  `get=1`, same
 *       capacity/-ENOSPC rule as egw_wg_get.
 *   egw_uapi_build / egw_uapi_parse  the pure text encoder / decoder.
 *
 * Links and rtnetlink batches
 * ===========================
 *   egw_link_add(fd, ifname, kind, target_ns_fd, err)  RTM_NEWLINK (create, exclusive) of a
 *       link of `kind` (e.g. "wireguard"). With target_ns_fd >= 0 the link is created
 *       directly inside that namespace (IFLA_NET_NS_FD) while the request comes from the
 *       socket's namespace: WireGuard then keeps its UDP socket in the socket's (node)
 *       namespace, without the cost of moving a link afterwards.
 *   egw_link_set(fd, ifname, up, mtu, err)  set a link up/down and its MTU (0 = keep).
 *   egw_link_del(fd, ifname, err)            delete a link; -ENODEV when absent.
 *   egw_link_index(fd, ifname)               the ifindex, -ENODEV when absent.
 *   egw_rt_apply(fd, ops, n, stats, err)  one batch of route / rule / address adds,
 *       replaces and deletes. Sent as many messages per sendmsg, ACK on the last one only;
 *       ops[i].result gets 0 or -errno for every op (a failed op does not stop the
 *       others). Returns 0 when all succeeded, else the first failure's -errno (err names
 *       its index).
 *   egw_rt_dump(fd, kind, family, ops, &n, err)  dump routes / rules / addresses into
 *       ops (same capacity/-ENOSPC rule), all tables. The caller filters by marker
 *       (protocol or table): egw marks its routes and rules with its own protocol.
 *   egw_rt_build / egw_rt_parse  pure encoder / decoder for golden tests and fuzzing.
 */
#ifndef EGW_NL_H
#define EGW_NL_H

#include <stddef.h>
#include <stdint.h>

/* EGW_CDEF_BEGIN */
#define EGW_KEY_LEN 32
#define EGW_IFNAMSIZ 16
#define EGW_ERRMSG_LEN 256
#define EGW_DUMP_RETRIES 3
#define EGW_NETLINK_ROUTE 0
#define EGW_NETLINK_GENERIC 16

struct egw_err {
	int code;		/* 0 or -errno */
	int index;		/* item the error is attributed to, -1 if none */
	char msg[256];		/* kernel extended-ACK text or our own reason */
};

/* struct egw_wg_device.flags */
#define EGW_WGDEV_HAS_PRIVATE_KEY 1
#define EGW_WGDEV_HAS_PUBLIC_KEY 2
#define EGW_WGDEV_HAS_LISTEN_PORT 4
#define EGW_WGDEV_HAS_FWMARK 8
#define EGW_WGDEV_REPLACE_PEERS 16

struct egw_wg_device {
	char ifname[16];
	uint32_t ifindex;
	uint32_t flags;
	uint8_t private_key[32];
	uint8_t public_key[32];
	uint16_t listen_port;
	uint32_t fwmark;
};

/* struct egw_wg_peer.flags */
#define EGW_WGPEER_HAS_PRESHARED_KEY 1
#define EGW_WGPEER_HAS_KEEPALIVE 2
#define EGW_WGPEER_HAS_ENDPOINT 4
#define EGW_WGPEER_REMOVE_ME 8
#define EGW_WGPEER_REPLACE_AIPS 16
#define EGW_WGPEER_UPDATE_ONLY 32

struct egw_wg_peer {
	uint8_t public_key[32];
	uint8_t preshared_key[32];
	uint32_t flags;
	uint16_t keepalive;
	uint16_t endpoint_family;	/* AF_INET (2) or AF_INET6 (10) */
	uint16_t endpoint_port;		/* host byte order */
	uint8_t endpoint_addr[16];
	uint32_t first_aip;
	uint32_t n_aips;
	int64_t last_handshake_sec;	/* read back only */
	int64_t last_handshake_nsec;
	uint64_t rx_bytes;
	uint64_t tx_bytes;
};

struct egw_wg_aip {
	uint16_t family;		/* AF_INET or AF_INET6 */
	uint8_t cidr;
	uint8_t pad;
	uint8_t addr[16];
};

struct egw_wg_opts {
	uint32_t max_nest;		/* peers nest bytes per message, 0 = 65000 */
	uint32_t removal_budget;	/* REMOVE_ME peers per message, 0 = 32 */
	uint32_t max_send;		/* bytes per sendmsg, 0 = 1 MiB */
};

struct egw_stats {
	uint64_t messages;		/* SET / NEW / DEL requests sent */
	uint64_t sends;			/* sendmsg calls (or UAPI transactions) */
	uint64_t bytes;
	uint64_t max_send_ns;		/* longest single sendmsg + its replies */
};

/* struct egw_rt_op */
#define EGW_RT_ROUTE 1
#define EGW_RT_RULE 2
#define EGW_RT_ADDR 3

#define EGW_OP_ADD 1		/* create, fail with -EEXIST if present */
#define EGW_OP_REPLACE 2	/* create or replace */
#define EGW_OP_DEL 3

#define EGW_RT_HAS_DST 1
#define EGW_RT_HAS_SRC 2
#define EGW_RT_HAS_GATEWAY 4
#define EGW_RT_HAS_PREFSRC 8
#define EGW_RT_HAS_PRIORITY 16
#define EGW_RT_HAS_FWMARK 32
#define EGW_RT_HAS_OIF 64

struct egw_rt_op {
	uint8_t kind;		/* EGW_RT_* */
	uint8_t op;		/* EGW_OP_*; 0 in dump output */
	uint8_t family;		/* AF_INET / AF_INET6 */
	uint8_t dst_len;	/* route dst / rule dst / address prefix length */
	uint8_t src_len;	/* rule src prefix length */
	uint8_t scope;		/* route / address scope (RT_SCOPE_*) */
	uint8_t protocol;	/* route / rule protocol: egw's marker */
	uint8_t type;		/* route type (RTN_UNICAST...); rule action (FR_ACT_TO_TBL) */
	uint8_t gw_family;	/* family of gateway; differs from family => RTA_VIA */
	uint8_t pad[3];
	uint32_t flags;		/* EGW_RT_HAS_* */
	uint32_t table;
	uint32_t oif;		/* route oif / address ifindex */
	uint32_t priority;	/* route metric / rule priority */
	uint32_t fwmark;
	uint32_t fwmask;
	uint8_t dst[16];	/* route dst / rule dst / address */
	uint8_t src[16];	/* rule src */
	uint8_t gateway[16];
	uint8_t prefsrc[16];
	int32_t result;		/* per-op result of egw_rt_apply */
};

int egw_ns_name_valid(const char *name);
int egw_ns_open(const char *name);
int egw_ns_open_current(void);
int egw_ns_same(int fd_a, int fd_b);

int egw_nl_open(int ns_fd, const char *ns_name, int protocol);
int egw_genl_family(int fd, const char *name);

int egw_wg_get(int fd, int family, const char *ifname, struct egw_wg_device *dev,
	       struct egw_wg_peer *peers, uint32_t *n_peers, struct egw_wg_aip *aips,
	       uint32_t *n_aips, struct egw_err *err);
int egw_wg_set(int fd, int family, const struct egw_wg_device *dev,
	       const struct egw_wg_peer *peers, uint32_t n_peers, const struct egw_wg_aip *aips,
	       const struct egw_wg_opts *opts, struct egw_stats *stats, int32_t *results,
	       struct egw_err *err);
int egw_wg_build(uint8_t *buf, size_t cap, int family, uint32_t seq,
		 const struct egw_wg_device *dev, const struct egw_wg_peer *peers, uint32_t n_peers,
		 const struct egw_wg_aip *aips, const struct egw_wg_opts *opts, uint32_t *n_msgs);
int egw_wg_parse(const uint8_t *buf, size_t len, struct egw_wg_device *dev,
		 struct egw_wg_peer *peers, uint32_t *n_peers, struct egw_wg_aip *aips,
		 uint32_t *n_aips);

int egw_uapi_set(const char *sock_path, const struct egw_wg_device *dev,
		 const struct egw_wg_peer *peers, uint32_t n_peers, const struct egw_wg_aip *aips,
		 struct egw_stats *stats, struct egw_err *err);
int egw_uapi_get(const char *sock_path, struct egw_wg_device *dev, struct egw_wg_peer *peers,
		 uint32_t *n_peers, struct egw_wg_aip *aips, uint32_t *n_aips, struct egw_err *err);
long egw_uapi_build(char *buf, size_t cap, const struct egw_wg_device *dev,
		    const struct egw_wg_peer *peers, uint32_t n_peers, const struct egw_wg_aip *aips);
int egw_uapi_parse(const char *text, size_t len, struct egw_wg_device *dev,
		   struct egw_wg_peer *peers, uint32_t *n_peers, struct egw_wg_aip *aips,
		   uint32_t *n_aips);

int egw_link_add(int fd, const char *ifname, const char *kind, int target_ns_fd,
		 struct egw_err *err);
int egw_link_set(int fd, const char *ifname, int up, uint32_t mtu, struct egw_err *err);
int egw_link_del(int fd, const char *ifname, struct egw_err *err);
int egw_link_index(int fd, const char *ifname);

int egw_rt_apply(int fd, struct egw_rt_op *ops, uint32_t n, struct egw_stats *stats,
		 struct egw_err *err);
int egw_rt_dump(int fd, int kind, int family, struct egw_rt_op *ops, uint32_t *n,
		struct egw_err *err);
long egw_rt_build(uint8_t *buf, size_t cap, const struct egw_rt_op *op, uint32_t seq);
int egw_rt_parse(const uint8_t *buf, size_t len, struct egw_rt_op *ops, uint32_t *n);
/* EGW_CDEF_END */

#endif
