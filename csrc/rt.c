/*
 * rt.c — rtnetlink: batched route / rule / address changes (egw_rt_apply), their dump
 * (egw_rt_dump), and the few link calls egw needs (create a link directly inside a target
 * namespace, set up/MTU, delete, look up an index). Written from linux/rtnetlink.h,
 * linux/fib_rules.h, linux/if_addr.h and linux/if_link.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include "nlcore.h"

#define RT_SEND_CHUNK (256 * 1024)

static size_t addr_len(uint8_t family)
{
	return family == AF_INET6 ? 16 : 4;
}

static uint16_t op_flags(const struct egw_rt_op *op)
{
	switch (op->op) {
	case EGW_OP_ADD:
		return NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;
	case EGW_OP_REPLACE:
		/* rules have no replace semantics: create exclusively, the caller diffed first */
		if (op->kind == EGW_RT_RULE)
			return NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;
		return NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE;
	default:
		return NLM_F_REQUEST;
	}
}

static void build_route(struct nlbuf *b, const struct egw_rt_op *op, int del)
{
	struct rtmsg *r = nl_reserve(b, sizeof(*r));
	size_t al = addr_len(op->family);

	if (!r)
		return;
	r->rtm_family = op->family;
	r->rtm_dst_len = op->dst_len;
	r->rtm_table = op->table < 256 ? (uint8_t)op->table : RT_TABLE_UNSPEC;
	r->rtm_protocol = op->protocol;
	/* a delete matches any scope unless told; kernel matches protocol when non-zero */
	r->rtm_scope = del ? RT_SCOPE_NOWHERE : op->scope;
	r->rtm_type = del ? op->type : (op->type ? op->type : RTN_UNICAST);
	nl_put_u32(b, RTA_TABLE, op->table ? op->table : RT_TABLE_MAIN);
	if (op->flags & EGW_RT_HAS_DST)
		nl_put(b, RTA_DST, op->dst, al);
	if (op->flags & EGW_RT_HAS_GATEWAY) {
		if (op->gw_family && op->gw_family != op->family) {
			struct {
				uint16_t family;
				uint8_t addr[16];
			} via;
			via.family = op->gw_family;
			memcpy(via.addr, op->gateway, 16);
			nl_put(b, RTA_VIA, &via, sizeof(uint16_t) + addr_len(op->gw_family));
		} else {
			nl_put(b, RTA_GATEWAY, op->gateway, al);
		}
	}
	if (op->flags & EGW_RT_HAS_OIF)
		nl_put_u32(b, RTA_OIF, op->oif);
	if (op->flags & EGW_RT_HAS_PRIORITY)
		nl_put_u32(b, RTA_PRIORITY, op->priority);
	if (op->flags & EGW_RT_HAS_PREFSRC)
		nl_put(b, RTA_PREFSRC, op->prefsrc, al);
}

static void build_rule(struct nlbuf *b, const struct egw_rt_op *op)
{
	struct fib_rule_hdr *h = nl_reserve(b, sizeof(*h));
	size_t al = addr_len(op->family);

	if (!h)
		return;
	h->family = op->family;
	h->dst_len = op->dst_len;
	h->src_len = op->src_len;
	h->table = op->table < 256 ? (uint8_t)op->table : RT_TABLE_UNSPEC;
	h->action = op->type ? op->type : FR_ACT_TO_TBL;
	if (op->table)
		nl_put_u32(b, FRA_TABLE, op->table);
	if (op->flags & EGW_RT_HAS_PRIORITY)
		nl_put_u32(b, FRA_PRIORITY, op->priority);
	if (op->flags & EGW_RT_HAS_DST)
		nl_put(b, FRA_DST, op->dst, al);
	if (op->flags & EGW_RT_HAS_SRC)
		nl_put(b, FRA_SRC, op->src, al);
	if (op->flags & EGW_RT_HAS_FWMARK) {
		nl_put_u32(b, FRA_FWMARK, op->fwmark);
		nl_put_u32(b, FRA_FWMASK, op->fwmask ? op->fwmask : 0xffffffffu);
	}
	if (op->protocol)
		nl_put_u8(b, FRA_PROTOCOL, op->protocol);
}

static void build_addr(struct nlbuf *b, const struct egw_rt_op *op)
{
	struct ifaddrmsg *a = nl_reserve(b, sizeof(*a));
	size_t al = addr_len(op->family);

	if (!a)
		return;
	a->ifa_family = op->family;
	a->ifa_prefixlen = op->dst_len;
	a->ifa_scope = op->scope;
	a->ifa_index = op->oif;
	nl_put(b, IFA_LOCAL, op->dst, al);
	nl_put(b, IFA_ADDRESS, op->dst, al);
}

static int rt_type(const struct egw_rt_op *op)
{
	int del = op->op == EGW_OP_DEL;

	switch (op->kind) {
	case EGW_RT_ROUTE:
		return del ? RTM_DELROUTE : RTM_NEWROUTE;
	case EGW_RT_RULE:
		return del ? RTM_DELRULE : RTM_NEWRULE;
	case EGW_RT_ADDR:
		return del ? RTM_DELADDR : RTM_NEWADDR;
	}
	return -EINVAL;
}

static int build_op(struct nlbuf *b, const struct egw_rt_op *op, uint32_t seq)
{
	int type = rt_type(op);
	size_t off;

	if (type < 0 || op->op < EGW_OP_ADD || op->op > EGW_OP_DEL ||
	    (op->family != AF_INET && op->family != AF_INET6) ||
	    op->dst_len > addr_len(op->family) * 8 || op->src_len > addr_len(op->family) * 8)
		return -EINVAL;
	off = nl_msg_begin(b, (uint16_t)type, op_flags(op), seq);
	if (op->kind == EGW_RT_ROUTE)
		build_route(b, op, op->op == EGW_OP_DEL);
	else if (op->kind == EGW_RT_RULE)
		build_rule(b, op);
	else
		build_addr(b, op);
	if (b->overflow) {
		b->len = off;
		b->overflow = 0;
		return -ENOSPC;
	}
	nl_msg_end(b, off);
	return 0;
}

long egw_rt_build(uint8_t *buf, size_t cap, const struct egw_rt_op *op, uint32_t seq)
{
	struct nlbuf b = { .p = buf, .cap = cap };
	int r;

	if (!buf || !op)
		return -EINVAL;
	r = build_op(&b, op, seq);
	return r < 0 ? r : (long)b.len;
}

/* ---- apply ---- */

struct apply_ctx {
	struct egw_rt_op *ops;
	uint32_t base_seq;
	uint32_t n;
	struct egw_err *err;
	int first;
};

static void apply_on_error(void *vctx, uint32_t seq, int code, const char *msg, uint32_t offset)
{
	struct apply_ctx *x = vctx;
	uint32_t i = seq - x->base_seq;

	(void)offset;
	if (i >= x->n)
		return;
	x->ops[i].result = code;
	if (!x->first) {
		x->first = code;
		egw_err_set(x->err, code, (int)i, msg);
	}
}

int egw_rt_apply(int fd, struct egw_rt_op *ops, uint32_t n, struct egw_stats *stats,
		 struct egw_err *err)
{
	struct apply_ctx x = { .ops = ops, .n = n, .err = err };
	struct nlbuf b = { 0 };
	uint8_t *rbuf = NULL;
	uint32_t i, start = 0, seq0 = (uint32_t)nl_now_ns();
	int ret = 0;

	egw_err_set(err, 0, -1, "");
	if (n && !ops)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		ops[i].result = 0;
		if (rt_type(&ops[i]) < 0) {
			egw_err_set(err, -EINVAL, (int)i, "unknown op kind");
			return -EINVAL;
		}
	}
	x.base_seq = seq0;
	b.cap = RT_SEND_CHUNK + 1024;
	b.p = malloc(b.cap);
	rbuf = malloc(EGW_RECV_BUF);
	if (!b.p || !rbuf) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		size_t last_off = b.len;
		uint64_t t0, dt;

		ret = build_op(&b, &ops[i], seq0 + i);
		if (ret < 0) {
			ops[i].result = ret;
			egw_err_set(err, ret, (int)i, "invalid op");
			goto out;
		}
		if (i + 1 < n && b.len < RT_SEND_CHUNK)
			continue;
		/* only the group's last message asks for an ACK; errors come regardless */
		((struct nlmsghdr *)(b.p + last_off))->nlmsg_flags |= NLM_F_ACK;
		t0 = nl_now_ns();
		ret = nl_send(fd, b.p, b.len);
		if (ret == 0)
			ret = nl_wait_acks(fd, rbuf, EGW_RECV_BUF, seq0 + start, seq0 + i, apply_on_error, &x);
		dt = nl_now_ns() - t0;
		if (stats) {
			stats->messages += i - start + 1;
			stats->sends++;
			stats->bytes += b.len;
			if (dt > stats->max_send_ns)
				stats->max_send_ns = dt;
		}
		if (ret < 0) {
			egw_err_set(err, ret, (int)start, "netlink transport failed");
			goto out;
		}
		b.len = 0;
		start = i + 1;
	}
	ret = x.first;
out:
	free(b.p);
	free(rbuf);
	return ret;
}

/* ---- decoding ---- */

static void copy_addr(uint8_t *dst, const struct nlattr *a)
{
	size_t n = nl_attr_len(a);

	memset(dst, 0, 16);
	memcpy(dst, nl_attr_data(a), n > 16 ? 16 : n);
}

static int parse_route(const struct nlmsghdr *nlh, struct egw_rt_op *o)
{
	const struct rtmsg *r = NLMSG_DATA(nlh);
	struct nlattr_it it;
	const struct nlattr *a;

	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*r)))
		return 0;
	o->kind = EGW_RT_ROUTE;
	o->family = r->rtm_family;
	o->dst_len = r->rtm_dst_len;
	o->src_len = r->rtm_src_len;
	o->table = r->rtm_table;
	o->protocol = r->rtm_protocol;
	o->scope = r->rtm_scope;
	o->type = r->rtm_type;
	nl_attr_it(&it, (const uint8_t *)r + NLMSG_ALIGN(sizeof(*r)), nlh->nlmsg_len - NLMSG_LENGTH(sizeof(*r)));
	while (nl_attr_next(&it, &a)) {
		switch (nl_attr_type(a)) {
		case RTA_TABLE:
			o->table = nl_get_u32(a);
			break;
		case RTA_DST:
			copy_addr(o->dst, a);
			o->flags |= EGW_RT_HAS_DST;
			break;
		case RTA_GATEWAY:
			copy_addr(o->gateway, a);
			o->gw_family = o->family;
			o->flags |= EGW_RT_HAS_GATEWAY;
			break;
		case RTA_VIA:
			if (nl_attr_len(a) >= 2) {
				uint16_t fam;
				size_t n = nl_attr_len(a) - 2;

				memcpy(&fam, nl_attr_data(a), 2);
				memset(o->gateway, 0, 16);
				memcpy(o->gateway, (const uint8_t *)nl_attr_data(a) + 2, n > 16 ? 16 : n);
				o->gw_family = (uint8_t)fam;
				o->flags |= EGW_RT_HAS_GATEWAY;
			}
			break;
		case RTA_OIF:
			o->oif = nl_get_u32(a);
			o->flags |= EGW_RT_HAS_OIF;
			break;
		case RTA_PRIORITY:
			o->priority = nl_get_u32(a);
			o->flags |= EGW_RT_HAS_PRIORITY;
			break;
		case RTA_PREFSRC:
			copy_addr(o->prefsrc, a);
			o->flags |= EGW_RT_HAS_PREFSRC;
			break;
		}
	}
	return 1;
}

static int parse_rule(const struct nlmsghdr *nlh, struct egw_rt_op *o)
{
	const struct fib_rule_hdr *h = NLMSG_DATA(nlh);
	struct nlattr_it it;
	const struct nlattr *a;

	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*h)))
		return 0;
	o->kind = EGW_RT_RULE;
	o->family = h->family;
	o->dst_len = h->dst_len;
	o->src_len = h->src_len;
	o->table = h->table;
	o->type = h->action;
	nl_attr_it(&it, (const uint8_t *)h + NLMSG_ALIGN(sizeof(*h)), nlh->nlmsg_len - NLMSG_LENGTH(sizeof(*h)));
	while (nl_attr_next(&it, &a)) {
		switch (nl_attr_type(a)) {
		case FRA_TABLE:
			o->table = nl_get_u32(a);
			break;
		case FRA_PRIORITY:
			o->priority = nl_get_u32(a);
			o->flags |= EGW_RT_HAS_PRIORITY;
			break;
		case FRA_DST:
			copy_addr(o->dst, a);
			o->flags |= EGW_RT_HAS_DST;
			break;
		case FRA_SRC:
			copy_addr(o->src, a);
			o->flags |= EGW_RT_HAS_SRC;
			break;
		case FRA_FWMARK:
			o->fwmark = nl_get_u32(a);
			o->flags |= EGW_RT_HAS_FWMARK;
			break;
		case FRA_FWMASK:
			o->fwmask = nl_get_u32(a);
			break;
		case FRA_PROTOCOL:
			o->protocol = nl_get_u8(a);
			break;
		}
	}
	return 1;
}

static int parse_addr(const struct nlmsghdr *nlh, struct egw_rt_op *o)
{
	const struct ifaddrmsg *m = NLMSG_DATA(nlh);
	struct nlattr_it it;
	const struct nlattr *a;
	int have_local = 0;

	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return 0;
	o->kind = EGW_RT_ADDR;
	o->family = m->ifa_family;
	o->dst_len = m->ifa_prefixlen;
	o->scope = m->ifa_scope;
	o->oif = m->ifa_index;
	o->flags |= EGW_RT_HAS_OIF;
	nl_attr_it(&it, (const uint8_t *)m + NLMSG_ALIGN(sizeof(*m)), nlh->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
	while (nl_attr_next(&it, &a)) {
		if (nl_attr_type(a) == IFA_LOCAL) {
			copy_addr(o->dst, a);
			have_local = 1;
		} else if (nl_attr_type(a) == IFA_ADDRESS && !have_local) {
			copy_addr(o->dst, a);
		}
	}
	o->flags |= EGW_RT_HAS_DST;
	return 1;
}

static int parse_one(const struct nlmsghdr *nlh, struct egw_rt_op *o)
{
	memset(o, 0, sizeof(*o));
	switch (nlh->nlmsg_type) {
	case RTM_NEWROUTE:
		return parse_route(nlh, o);
	case RTM_NEWRULE:
		return parse_rule(nlh, o);
	case RTM_NEWADDR:
		return parse_addr(nlh, o);
	}
	return 0;
}

struct dump_ctx {
	struct egw_rt_op *ops;
	uint32_t cap, n;
};

static int dump_msg(void *vctx, const struct nlmsghdr *nlh)
{
	struct dump_ctx *x = vctx;
	struct egw_rt_op o;

	if (!parse_one(nlh, &o))
		return 0;
	if (x->n < x->cap)
		x->ops[x->n] = o;
	x->n++;
	return 0;
}

int egw_rt_parse(const uint8_t *buf, size_t len, struct egw_rt_op *ops, uint32_t *n)
{
	struct dump_ctx x = { .ops = ops };
	const struct nlmsghdr *nlh;

	if (!buf || !n)
		return -EINVAL;
	x.cap = ops ? *n : 0;
	for (nlh = (const struct nlmsghdr *)buf; NLMSG_OK(nlh, len); nlh = nl_next(nlh, &len))
		dump_msg(&x, nlh);
	*n = x.n;
	return x.n > x.cap ? -ENOSPC : 0;
}

int egw_rt_dump(int fd, int kind, int family, struct egw_rt_op *ops, uint32_t *n, struct egw_err *err)
{
	uint8_t req[64];
	int attempt, ret = -EAGAIN;

	egw_err_set(err, 0, -1, "");
	if (!n || (kind != EGW_RT_ROUTE && kind != EGW_RT_RULE && kind != EGW_RT_ADDR))
		return -EINVAL;
	for (attempt = 0; attempt <= EGW_DUMP_RETRIES; attempt++) {
		struct nlbuf b = { .p = req, .cap = sizeof(req) };
		struct dump_ctx x = { .ops = ops, .cap = ops ? *n : 0 };
		uint32_t seq = (uint32_t)nl_now_ns();
		size_t off;

		if (kind == EGW_RT_ROUTE) {
			struct rtmsg *r;

			off = nl_msg_begin(&b, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq);
			r = nl_reserve(&b, sizeof(*r));
			r->rtm_family = (uint8_t)family;
		} else if (kind == EGW_RT_RULE) {
			struct fib_rule_hdr *h;

			off = nl_msg_begin(&b, RTM_GETRULE, NLM_F_REQUEST | NLM_F_DUMP, seq);
			h = nl_reserve(&b, sizeof(*h));
			h->family = (uint8_t)family;
		} else {
			struct ifaddrmsg *m;

			off = nl_msg_begin(&b, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq);
			m = nl_reserve(&b, sizeof(*m));
			m->ifa_family = (uint8_t)family;
		}
		nl_msg_end(&b, off);
		ret = nl_dump(fd, b.p, b.len, seq, dump_msg, &x, err);
		if (ret == -EINTR)
			continue;
		if (ret < 0)
			return ret;
		*n = x.n;
		return x.n > x.cap ? -ENOSPC : 0;
	}
	egw_err_set(err, -EAGAIN, -1, "table kept changing during the dump");
	return -EAGAIN;
}

/* ---- links ---- */

struct link_ctx {
	int ifindex;
};

static int link_msg(void *vctx, const struct nlmsghdr *nlh)
{
	struct link_ctx *x = vctx;

	if (nlh->nlmsg_type == RTM_NEWLINK && nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(struct ifinfomsg)))
		x->ifindex = ((const struct ifinfomsg *)NLMSG_DATA(nlh))->ifi_index;
	return 0;
}

/* Send one request with NLM_F_ACK; replies of the same seq go to on_msg. */
static int transact(int fd, struct nlbuf *b, uint32_t seq, nl_msg_cb on_msg, void *ctx, struct egw_err *err)
{
	uint8_t *rbuf;
	int ret;

	ret = nl_send(fd, b->p, b->len);
	if (ret < 0)
		return ret;
	rbuf = malloc(EGW_RECV_BUF);
	if (!rbuf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = recv(fd, rbuf, EGW_RECV_BUF, 0);
		const struct nlmsghdr *nlh;
		size_t left;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		left = (size_t)n;
		for (nlh = (const struct nlmsghdr *)rbuf; NLMSG_OK(nlh, left); nlh = nl_next(nlh, &left)) {
			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				char msg[EGW_ERRMSG_LEN];

				ret = nl_parse_error(nlh, msg, sizeof(msg), NULL);
				if (ret)
					egw_err_set(err, ret, -1, msg);
				goto out;
			}
			if (on_msg)
				on_msg(ctx, nlh);
		}
	}
out:
	free(rbuf);
	return ret;
}

static int ifname_ok(const char *ifname)
{
	size_t n;

	if (!ifname)
		return 0;
	n = strlen(ifname);
	return n > 0 && n < IFNAMSIZ && !strchr(ifname, '/') && !strchr(ifname, ' ');
}

static int link_request(int fd, uint16_t type, uint16_t flags, const char *ifname, const char *kind,
			int target_ns_fd, int up, uint32_t mtu, struct link_ctx *out, struct egw_err *err)
{
	uint8_t req[256];
	struct nlbuf b = { .p = req, .cap = sizeof(req) };
	struct ifinfomsg *ifi;
	uint32_t seq = (uint32_t)nl_now_ns();
	size_t off;

	egw_err_set(err, 0, -1, "");
	if (!ifname_ok(ifname))
		return -EINVAL;
	off = nl_msg_begin(&b, type, NLM_F_REQUEST | NLM_F_ACK | flags, seq);
	ifi = nl_reserve(&b, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	if (up >= 0) {
		ifi->ifi_change = IFF_UP;
		ifi->ifi_flags = up ? IFF_UP : 0;
	}
	nl_put_str(&b, IFLA_IFNAME, ifname);
	if (mtu)
		nl_put_u32(&b, IFLA_MTU, mtu);
	if (kind) {
		size_t li = nl_nest_begin(&b, IFLA_LINKINFO);

		nl_put_str(&b, IFLA_INFO_KIND, kind);
		nl_nest_end(&b, li);
	}
	if (target_ns_fd >= 0)
		nl_put_u32(&b, IFLA_NET_NS_FD, (uint32_t)target_ns_fd);
	if (b.overflow)
		return -EINVAL;
	nl_msg_end(&b, off);
	return transact(fd, &b, seq, out ? link_msg : NULL, out, err);
}

int egw_link_add(int fd, const char *ifname, const char *kind, int target_ns_fd, struct egw_err *err)
{
	if (!kind || !*kind || strlen(kind) > 32)
		return -EINVAL;
	return link_request(fd, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifname, kind, target_ns_fd, -1, 0,
			    NULL, err);
}

int egw_link_set(int fd, const char *ifname, int up, uint32_t mtu, struct egw_err *err)
{
	return link_request(fd, RTM_NEWLINK, 0, ifname, NULL, -1, up ? 1 : 0, mtu, NULL, err);
}

int egw_link_del(int fd, const char *ifname, struct egw_err *err)
{
	return link_request(fd, RTM_DELLINK, 0, ifname, NULL, -1, -1, 0, NULL, err);
}

int egw_link_index(int fd, const char *ifname)
{
	struct link_ctx x = { 0 };
	int ret = link_request(fd, RTM_GETLINK, 0, ifname, NULL, -1, -1, 0, &x, NULL);

	if (ret < 0)
		return ret;
	return x.ifindex > 0 ? x.ifindex : -ENODEV;
}
