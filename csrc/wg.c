/*
 * wg.c — WireGuard over generic netlink (kernel backend): egw_wg_build / egw_wg_set and
 * egw_wg_parse / egw_wg_get. Written from the prose in linux/wireguard.h.
 *
 * Batching (see egw_nl.h): one message carries one WGDEVICE_A_PEERS nest of at most
 * opts->max_nest bytes. Removal peers and other peers never share a message, a removal
 * message holds at most opts->removal_budget peers and is sent in its own sendmsg so one
 * RTNL hold stays short and measurable. Other messages are concatenated into one sendmsg.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/genetlink.h>
#include <linux/wireguard.h>

#include "nlcore.h"

#define DEFAULT_MAX_NEST 65000u
#define MIN_MAX_NEST 512u
#define DEFAULT_REMOVAL_BUDGET 32u
#define DEFAULT_MAX_SEND (1024u * 1024u)

struct wg_limits {
	uint32_t max_nest, removal_budget, max_send;
};

static struct wg_limits limits_of(const struct egw_wg_opts *o)
{
	struct wg_limits l = { DEFAULT_MAX_NEST, DEFAULT_REMOVAL_BUDGET, DEFAULT_MAX_SEND };

	if (o && o->max_nest)
		l.max_nest = o->max_nest;
	if (l.max_nest > 65535u)
		l.max_nest = 65535u;
	if (l.max_nest < MIN_MAX_NEST)
		l.max_nest = MIN_MAX_NEST;
	if (o && o->removal_budget)
		l.removal_budget = o->removal_budget;
	if (o && o->max_send)
		l.max_send = o->max_send;
	return l;
}

/* Where the builder stands: next peer, next allowed IP of that peer (continuation). */
struct wg_cursor {
	uint32_t peer;
	uint32_t aip;
	int first_msg;
};

/* What one built message holds, for attributing errors. */
struct wg_msg {
	uint32_t seq;
	uint32_t first_peer, last_peer;	/* inclusive; last < first when the message has no peers */
	size_t start;			/* offset of the nlmsghdr in the send buffer */
	int removal;
};

static uint32_t peer_flags_wire(uint32_t f, int continuation)
{
	uint32_t w = 0;

	if (f & EGW_WGPEER_REMOVE_ME)
		w |= WGPEER_F_REMOVE_ME;
	if ((f & EGW_WGPEER_REPLACE_AIPS) && !continuation)
		w |= WGPEER_F_REPLACE_ALLOWEDIPS;
	if (f & EGW_WGPEER_UPDATE_ONLY)
		w |= WGPEER_F_UPDATE_ONLY;
	return w;
}

static void put_endpoint(struct nlbuf *b, const struct egw_wg_peer *p)
{
	if (p->endpoint_family == AF_INET) {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(p->endpoint_port) };

		memcpy(&sin.sin_addr, p->endpoint_addr, 4);
		nl_put(b, WGPEER_A_ENDPOINT, &sin, sizeof(sin));
	} else if (p->endpoint_family == AF_INET6) {
		struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(p->endpoint_port) };

		memcpy(&sin6.sin6_addr, p->endpoint_addr, 16);
		nl_put(b, WGPEER_A_ENDPOINT, &sin6, sizeof(sin6));
	}
}

static void put_aip(struct nlbuf *b, const struct egw_wg_aip *a)
{
	size_t n = nl_nest_begin(b, 0);

	nl_put_u16(b, WGALLOWEDIP_A_FAMILY, a->family);
	nl_put(b, WGALLOWEDIP_A_IPADDR, a->addr, a->family == AF_INET6 ? 16 : 4);
	nl_put_u8(b, WGALLOWEDIP_A_CIDR_MASK, a->cidr);
	nl_nest_end(b, n);
}

static int too_big(const struct nlbuf *b, size_t nest_off, const struct wg_limits *l)
{
	return b->overflow || b->len - nest_off > l->max_nest;
}

/*
 * Append one peer (or its continuation) to the open peers nest. Returns 1 when the whole
 * remaining peer went in, 0 when only part of its allowed IPs fit (cursor->aip advanced),
 * -1 when nothing of it fit (buffer rolled back).
 */
static int put_peer(struct nlbuf *b, size_t nest_off, struct wg_cursor *c, const struct egw_wg_peer *p,
		    const struct egw_wg_aip *aips, const struct wg_limits *l, int alone)
{
	size_t save = b->len, pn, an;
	int cont = c->aip > 0;
	uint32_t wflags = peer_flags_wire(p->flags, cont), i, put = 0;

	pn = nl_nest_begin(b, 0);
	nl_put(b, WGPEER_A_PUBLIC_KEY, p->public_key, EGW_KEY_LEN);
	if (wflags)
		nl_put_u32(b, WGPEER_A_FLAGS, wflags);
	if (!cont && !(p->flags & EGW_WGPEER_REMOVE_ME)) {
		if (p->flags & EGW_WGPEER_HAS_PRESHARED_KEY)
			nl_put(b, WGPEER_A_PRESHARED_KEY, p->preshared_key, EGW_KEY_LEN);
		if (p->flags & EGW_WGPEER_HAS_ENDPOINT)
			put_endpoint(b, p);
		if (p->flags & EGW_WGPEER_HAS_KEEPALIVE)
			nl_put_u16(b, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, p->keepalive);
	}
	if (too_big(b, nest_off, l))
		goto rollback;
	if (!(p->flags & EGW_WGPEER_REMOVE_ME) && c->aip < p->n_aips) {
		an = nl_nest_begin(b, WGPEER_A_ALLOWEDIPS);
		for (i = c->aip; i < p->n_aips; i++) {
			size_t before = b->len;

			put_aip(b, &aips[p->first_aip + i]);
			if (too_big(b, nest_off, l)) {
				b->len = before;
				b->overflow = 0;
				break;
			}
			put++;
		}
		/* Do not start a fragment that carries no allowed IP unless it is alone. */
		if (put == 0 && !alone)
			goto rollback;
		if (put == 0)
			return -1;
		nl_nest_end(b, an);
	}
	nl_nest_end(b, pn);
	if (!(p->flags & EGW_WGPEER_REMOVE_ME) && c->aip + put < p->n_aips) {
		c->aip += put;
		return 0;
	}
	c->aip = 0;
	return 1;
rollback:
	b->len = save;
	b->overflow = 0;
	return -1;
}

/*
 * Build one SET message at the end of b, advancing the cursor. peer_off (may be NULL) gets the
 * offset, within the message, of each peer's first fragment. Returns 0, or -EMSGSIZE when not
 * even one peer fits (buffer too small for max_nest) or -ENOSPC when b is full.
 */
static int build_one(struct nlbuf *b, int family, uint32_t seq, struct wg_cursor *c,
		     const struct egw_wg_device *dev, const struct egw_wg_peer *peers, uint32_t n_peers,
		     const struct egw_wg_aip *aips, const struct wg_limits *l, struct wg_msg *mi,
		     uint32_t *peer_off)
{
	size_t off = b->len, nest;
	struct genlmsghdr *g;
	uint32_t removals = 0, count = 0;
	int removal_msg = c->peer < n_peers && (peers[c->peer].flags & EGW_WGPEER_REMOVE_ME);

	nl_msg_begin(b, (uint16_t)family, NLM_F_REQUEST, seq);
	g = nl_reserve(b, GENL_HDRLEN);
	if (!g)
		goto full;
	g->cmd = WG_CMD_SET_DEVICE;
	g->version = WG_GENL_VERSION;
	if (dev->ifindex)
		nl_put_u32(b, WGDEVICE_A_IFINDEX, dev->ifindex);
	else
		nl_put(b, WGDEVICE_A_IFNAME, dev->ifname, strnlen(dev->ifname, EGW_IFNAMSIZ - 1) + 1);
	if (c->first_msg) {
		if (dev->flags & EGW_WGDEV_REPLACE_PEERS)
			nl_put_u32(b, WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS);
		if (dev->flags & EGW_WGDEV_HAS_PRIVATE_KEY)
			nl_put(b, WGDEVICE_A_PRIVATE_KEY, dev->private_key, EGW_KEY_LEN);
		if (dev->flags & EGW_WGDEV_HAS_LISTEN_PORT)
			nl_put_u16(b, WGDEVICE_A_LISTEN_PORT, dev->listen_port);
		if (dev->flags & EGW_WGDEV_HAS_FWMARK)
			nl_put_u32(b, WGDEVICE_A_FWMARK, dev->fwmark);
	}
	if (b->overflow)
		goto full;
	mi->seq = seq;
	mi->start = off;
	mi->first_peer = c->peer;
	mi->last_peer = c->peer - 1;
	mi->removal = removal_msg;
	if (c->peer < n_peers) {
		nest = nl_nest_begin(b, WGDEVICE_A_PEERS);
		if (b->overflow)
			goto full;
		while (c->peer < n_peers) {
			const struct egw_wg_peer *p = &peers[c->peer];
			int is_rm = !!(p->flags & EGW_WGPEER_REMOVE_ME), r;
			size_t at = b->len - off;

			if (is_rm != removal_msg || (is_rm && removals >= l->removal_budget))
				break;
			r = put_peer(b, nest, c, p, aips, l, count == 0);
			if (r < 0)
				break;
			/* only a peer's first fragment can follow another peer in a message */
			if (peer_off && count > 0)
				peer_off[c->peer] = (uint32_t)at;
			count++;
			mi->last_peer = c->peer;
			if (r == 0)
				break;	/* partially sent: continue this peer in the next message */
			removals += is_rm;
			c->peer++;
		}
		if (count == 0)
			goto nofit;
		nl_nest_end(b, nest);
	}
	nl_msg_end(b, off);
	c->first_msg = 0;
	return 0;
nofit:
	b->len = off;
	b->overflow = 0;
	return b->cap - off >= l->max_nest + 1024 ? -EMSGSIZE : -ENOSPC;
full:
	b->len = off;
	b->overflow = 0;
	return -ENOSPC;
}

int egw_wg_build(uint8_t *buf, size_t cap, int family, uint32_t seq,
		 const struct egw_wg_device *dev, const struct egw_wg_peer *peers, uint32_t n_peers,
		 const struct egw_wg_aip *aips, const struct egw_wg_opts *opts, uint32_t *n_msgs)
{
	struct nlbuf b = { .p = buf, .cap = cap };
	struct wg_cursor c = { .first_msg = 1 };
	struct wg_limits l = limits_of(opts);
	uint32_t msgs = 0;

	if (!dev || (n_peers && (!peers || !aips)))
		return -EINVAL;
	do {
		struct wg_msg mi;
		int r = build_one(&b, family, seq + msgs, &c, dev, peers, n_peers, aips, &l, &mi, NULL);

		if (r < 0)
			return r == -EMSGSIZE ? -ENOSPC : r;
		msgs++;
	} while (c.peer < n_peers);
	if (n_msgs)
		*n_msgs = msgs;
	return (int)b.len;
}

/* ---- set: send groups of messages and attribute errors ---- */

struct set_ctx {
	struct wg_msg *msgs;
	uint32_t n_msgs;
	const uint32_t *peer_off;
	int32_t *results;
	struct egw_err *err;
	int first;
};

static void set_on_error(void *vctx, uint32_t seq, int code, const char *msg, uint32_t offset)
{
	struct set_ctx *x = vctx;
	struct wg_msg *m = NULL;
	uint32_t i, culprit;

	for (i = 0; i < x->n_msgs; i++)
		if (x->msgs[i].seq == seq)
			m = &x->msgs[i];
	if (!m)
		return;
	culprit = m->first_peer;
	if (offset != UINT32_MAX && m->last_peer >= m->first_peer) {
		for (i = m->first_peer + 1; i <= m->last_peer; i++)
			if (x->peer_off[i] <= offset)
				culprit = i;
	}
	if (x->results && m->last_peer >= m->first_peer) {
		for (i = m->first_peer; i <= m->last_peer; i++) {
			if (offset == UINT32_MAX)
				x->results[i] = code;
			else if (i == culprit)
				x->results[i] = code;
			else if (i > culprit)
				x->results[i] = -ECANCELED;
		}
	}
	if (!x->first) {
		x->first = code;
		egw_err_set(x->err, code, m->last_peer >= m->first_peer ? (int)culprit : -1, msg);
	}
}

static int flush(int fd, struct nlbuf *b, struct wg_msg *msgs, uint32_t n, struct set_ctx *x,
		 uint8_t *rbuf, struct egw_stats *stats)
{
	struct nlmsghdr *last;
	uint64_t t0, dt;
	int ret;

	if (!n)
		return 0;
	last = (struct nlmsghdr *)(b->p + msgs[n - 1].start);
	last->nlmsg_flags |= NLM_F_ACK;
	x->msgs = msgs;
	x->n_msgs = n;
	t0 = nl_now_ns();
	ret = nl_send(fd, b->p, b->len);
	if (ret == 0)
		ret = nl_wait_acks(fd, rbuf, EGW_RECV_BUF, msgs[0].seq, msgs[n - 1].seq, set_on_error, x);
	dt = nl_now_ns() - t0;
	if (stats) {
		stats->messages += n;
		stats->sends++;
		stats->bytes += b->len;
		if (dt > stats->max_send_ns)
			stats->max_send_ns = dt;
	}
	b->len = 0;
	return ret;
}

int egw_wg_set(int fd, int family, const struct egw_wg_device *dev,
	       const struct egw_wg_peer *peers, uint32_t n_peers, const struct egw_wg_aip *aips,
	       const struct egw_wg_opts *opts, struct egw_stats *stats, int32_t *results,
	       struct egw_err *err)
{
	struct wg_limits l = limits_of(opts);
	struct wg_cursor c = { .first_msg = 1 };
	struct set_ctx x = { .results = results, .err = err };
	struct nlbuf b = { 0 };
	struct wg_msg *msgs = NULL;
	uint32_t *peer_off = NULL, n = 0, cap_msgs, seq = (uint32_t)nl_now_ns();
	uint8_t *rbuf = NULL;
	int ret = 0;

	egw_err_set(err, 0, -1, "");
	if (!dev || (n_peers && (!peers || !aips)) || family <= 0)
		return -EINVAL;
	if (results)
		memset(results, 0, sizeof(*results) * n_peers);
	/* one message holds at least one peer fragment; a group at most max_send / ~100 bytes */
	cap_msgs = l.max_send / 64 + 2;
	b.cap = l.max_send + l.max_nest + 4096;
	b.p = malloc(b.cap);
	msgs = calloc(cap_msgs, sizeof(*msgs));
	peer_off = calloc(n_peers + 1, sizeof(*peer_off));
	rbuf = malloc(EGW_RECV_BUF);
	if (!b.p || !msgs || !peer_off || !rbuf) {
		ret = -ENOMEM;
		goto out;
	}
	x.peer_off = peer_off;
	do {
		int r, removal = c.peer < n_peers && c.aip == 0 && (peers[c.peer].flags & EGW_WGPEER_REMOVE_ME);

		/* Removal messages travel alone: flush what is queued first. */
		if (removal && n > 0) {
			ret = flush(fd, &b, msgs, n, &x, rbuf, stats);
			n = 0;
			if (ret < 0)
				goto out;
		}
		r = build_one(&b, family, seq, &c, dev, peers, n_peers, aips, &l, &msgs[n], peer_off);
		if (r < 0) {
			ret = r;
			egw_err_set(err, r, (int)c.peer, "a peer does not fit in one message");
			goto out;
		}
		seq++;
		n++;
		if (removal || b.len >= l.max_send || n >= cap_msgs) {
			ret = flush(fd, &b, msgs, n, &x, rbuf, stats);
			n = 0;
			if (ret < 0)
				goto out;
		}
	} while (c.peer < n_peers);
	ret = flush(fd, &b, msgs, n, &x, rbuf, stats);
	if (ret < 0)
		egw_err_set(err, ret, -1, "netlink transport failed");
out:
	if (ret == 0 && x.first)
		ret = x.first;
	free(b.p);
	free(msgs);
	free(peer_off);
	free(rbuf);
	return ret;
}

/* ---- decoding ---- */

struct wg_parse {
	struct egw_wg_device *dev;
	struct egw_wg_peer *peers;
	struct egw_wg_aip *aips;
	uint32_t cap_peers, cap_aips;
	uint32_t n_peers, n_aips;	/* needed counts (may exceed capacities) */
	int have_last;
	uint8_t last_key[EGW_KEY_LEN];
};

static void parse_endpoint(const struct nlattr *a, struct egw_wg_peer *p)
{
	size_t len = nl_attr_len(a);
	const uint8_t *d = nl_attr_data(a);
	uint16_t fam;

	if (len < sizeof(uint16_t))
		return;
	memcpy(&fam, d, sizeof(fam));
	if (fam == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;

		memcpy(&sin, d, sizeof(sin));
		p->endpoint_family = AF_INET;
		p->endpoint_port = ntohs(sin.sin_port);
		memcpy(p->endpoint_addr, &sin.sin_addr, 4);
		p->flags |= EGW_WGPEER_HAS_ENDPOINT;
	} else if (fam == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, d, sizeof(sin6));
		p->endpoint_family = AF_INET6;
		p->endpoint_port = ntohs(sin6.sin6_port);
		memcpy(p->endpoint_addr, &sin6.sin6_addr, 16);
		p->flags |= EGW_WGPEER_HAS_ENDPOINT;
	}
}

static void parse_aips(struct wg_parse *s, const struct nlattr *list)
{
	struct nlattr_it it, in;
	const struct nlattr *n, *a;

	nl_attr_it(&it, nl_attr_data(list), nl_attr_len(list));
	while (nl_attr_next(&it, &n)) {
		struct egw_wg_aip ip = { 0 };
		int have_addr = 0;

		nl_attr_it(&in, nl_attr_data(n), nl_attr_len(n));
		while (nl_attr_next(&in, &a)) {
			switch (nl_attr_type(a)) {
			case WGALLOWEDIP_A_FAMILY:
				ip.family = nl_get_u16(a);
				break;
			case WGALLOWEDIP_A_IPADDR:
				if (nl_attr_len(a) == 4 || nl_attr_len(a) == 16) {
					memcpy(ip.addr, nl_attr_data(a), nl_attr_len(a));
					have_addr = 1;
				}
				break;
			case WGALLOWEDIP_A_CIDR_MASK:
				ip.cidr = nl_get_u8(a);
				break;
			}
		}
		if (!have_addr || (ip.family != AF_INET && ip.family != AF_INET6))
			continue;
		if (s->n_aips < s->cap_aips)
			s->aips[s->n_aips] = ip;
		s->n_aips++;
	}
}

static void parse_peer(struct wg_parse *s, const struct nlattr *nest)
{
	struct egw_wg_peer p = { 0 };
	struct nlattr_it it;
	const struct nlattr *a;
	const struct nlattr *aip_list = NULL;
	int have_key = 0;
	static const uint8_t zero[EGW_KEY_LEN];

	nl_attr_it(&it, nl_attr_data(nest), nl_attr_len(nest));
	while (nl_attr_next(&it, &a)) {
		switch (nl_attr_type(a)) {
		case WGPEER_A_PUBLIC_KEY:
			if (nl_attr_len(a) == EGW_KEY_LEN) {
				memcpy(p.public_key, nl_attr_data(a), EGW_KEY_LEN);
				have_key = 1;
			}
			break;
		case WGPEER_A_PRESHARED_KEY:
			if (nl_attr_len(a) == EGW_KEY_LEN && memcmp(nl_attr_data(a), zero, EGW_KEY_LEN)) {
				memcpy(p.preshared_key, nl_attr_data(a), EGW_KEY_LEN);
				p.flags |= EGW_WGPEER_HAS_PRESHARED_KEY;
			}
			break;
		case WGPEER_A_ENDPOINT:
			parse_endpoint(a, &p);
			break;
		case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
			p.keepalive = nl_get_u16(a);
			if (p.keepalive)
				p.flags |= EGW_WGPEER_HAS_KEEPALIVE;
			break;
		case WGPEER_A_LAST_HANDSHAKE_TIME:
			if (nl_attr_len(a) >= 16) {
				memcpy(&p.last_handshake_sec, nl_attr_data(a), 8);
				memcpy(&p.last_handshake_nsec, (const uint8_t *)nl_attr_data(a) + 8, 8);
			}
			break;
		case WGPEER_A_RX_BYTES:
			p.rx_bytes = nl_get_u64(a);
			break;
		case WGPEER_A_TX_BYTES:
			p.tx_bytes = nl_get_u64(a);
			break;
		case WGPEER_A_ALLOWEDIPS:
			aip_list = a;
			break;
		}
	}
	if (!have_key)
		return;
	/* A continuation repeats the previous peer's key: coalesce by appending its IPs. */
	if (s->have_last && !memcmp(s->last_key, p.public_key, EGW_KEY_LEN)) {
		uint32_t before = s->n_aips;

		if (aip_list)
			parse_aips(s, aip_list);
		if (s->n_peers <= s->cap_peers && s->n_peers > 0)
			s->peers[s->n_peers - 1].n_aips += s->n_aips - before;
		return;
	}
	p.first_aip = s->n_aips;
	if (aip_list)
		parse_aips(s, aip_list);
	p.n_aips = s->n_aips - p.first_aip;
	if (s->n_peers < s->cap_peers)
		s->peers[s->n_peers] = p;
	s->n_peers++;
	memcpy(s->last_key, p.public_key, EGW_KEY_LEN);
	s->have_last = 1;
}

static int parse_msg(void *vs, const struct nlmsghdr *nlh)
{
	struct wg_parse *s = vs;
	struct nlattr_it it, pit;
	const struct nlattr *a, *pn;

	if (nlh->nlmsg_type < NLMSG_MIN_TYPE || nlh->nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN)
		return 0;
	nl_attr_it(&it, (const uint8_t *)NLMSG_DATA(nlh) + GENL_HDRLEN,
		   nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN);
	while (nl_attr_next(&it, &a)) {
		struct egw_wg_device *d = s->dev;

		switch (nl_attr_type(a)) {
		case WGDEVICE_A_IFINDEX:
			d->ifindex = nl_get_u32(a);
			break;
		case WGDEVICE_A_IFNAME: {
			size_t n = nl_attr_len(a);

			if (n >= EGW_IFNAMSIZ)
				n = EGW_IFNAMSIZ - 1;
			memset(d->ifname, 0, sizeof(d->ifname));
			memcpy(d->ifname, nl_attr_data(a), n);
			break;
		}
		case WGDEVICE_A_PRIVATE_KEY:
			if (nl_attr_len(a) == EGW_KEY_LEN) {
				memcpy(d->private_key, nl_attr_data(a), EGW_KEY_LEN);
				d->flags |= EGW_WGDEV_HAS_PRIVATE_KEY;
			}
			break;
		case WGDEVICE_A_PUBLIC_KEY:
			if (nl_attr_len(a) == EGW_KEY_LEN) {
				memcpy(d->public_key, nl_attr_data(a), EGW_KEY_LEN);
				d->flags |= EGW_WGDEV_HAS_PUBLIC_KEY;
			}
			break;
		case WGDEVICE_A_LISTEN_PORT:
			d->listen_port = nl_get_u16(a);
			d->flags |= EGW_WGDEV_HAS_LISTEN_PORT;
			break;
		case WGDEVICE_A_FWMARK:
			d->fwmark = nl_get_u32(a);
			d->flags |= EGW_WGDEV_HAS_FWMARK;
			break;
		case WGDEVICE_A_PEERS:
			nl_attr_it(&pit, nl_attr_data(a), nl_attr_len(a));
			while (nl_attr_next(&pit, &pn))
				parse_peer(s, pn);
			break;
		}
	}
	return 0;
}

static int parse_finish(struct wg_parse *s, uint32_t *n_peers, uint32_t *n_aips)
{
	int ret = (s->n_peers > s->cap_peers || s->n_aips > s->cap_aips) ? -ENOSPC : 0;

	*n_peers = s->n_peers;
	*n_aips = s->n_aips;
	return ret;
}

int egw_wg_parse(const uint8_t *buf, size_t len, struct egw_wg_device *dev,
		 struct egw_wg_peer *peers, uint32_t *n_peers, struct egw_wg_aip *aips,
		 uint32_t *n_aips)
{
	struct wg_parse s = { .dev = dev, .peers = peers, .aips = aips };
	const struct nlmsghdr *nlh;

	if (!dev || !n_peers || !n_aips || !buf)
		return -EINVAL;
	s.cap_peers = peers ? *n_peers : 0;
	s.cap_aips = aips ? *n_aips : 0;
	memset(dev, 0, sizeof(*dev));
	for (nlh = (const struct nlmsghdr *)buf; NLMSG_OK(nlh, len); nlh = nl_next(nlh, &len))
		parse_msg(&s, nlh);
	return parse_finish(&s, n_peers, n_aips);
}

int egw_wg_get(int fd, int family, const char *ifname, struct egw_wg_device *dev,
	       struct egw_wg_peer *peers, uint32_t *n_peers, struct egw_wg_aip *aips,
	       uint32_t *n_aips, struct egw_err *err)
{
	uint8_t req[128];
	int attempt, ret = -EAGAIN;

	egw_err_set(err, 0, -1, "");
	if (!ifname || !dev || !n_peers || !n_aips || strlen(ifname) >= EGW_IFNAMSIZ || family <= 0)
		return -EINVAL;
	for (attempt = 0; attempt <= EGW_DUMP_RETRIES; attempt++) {
		struct nlbuf b = { .p = req, .cap = sizeof(req) };
		struct wg_parse s = { .dev = dev, .peers = peers, .aips = aips };
		struct genlmsghdr *g;
		uint32_t seq = (uint32_t)nl_now_ns();
		size_t off;

		s.cap_peers = peers ? *n_peers : 0;
		s.cap_aips = aips ? *n_aips : 0;
		memset(dev, 0, sizeof(*dev));
		off = nl_msg_begin(&b, (uint16_t)family, NLM_F_REQUEST | NLM_F_DUMP, seq);
		g = nl_reserve(&b, GENL_HDRLEN);
		g->cmd = WG_CMD_GET_DEVICE;
		g->version = WG_GENL_VERSION;
		nl_put_str(&b, WGDEVICE_A_IFNAME, ifname);
		nl_msg_end(&b, off);
		ret = nl_dump(fd, b.p, b.len, seq, parse_msg, &s, err);
		if (ret == -EINTR)
			continue;	/* the device changed mid-dump: read it again */
		if (ret < 0)
			return ret;
		return parse_finish(&s, n_peers, n_aips);
	}
	egw_err_set(err, -EAGAIN, -1, "device kept changing during the dump");
	return -EAGAIN;
}
