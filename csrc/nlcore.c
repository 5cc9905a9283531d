/*
 * nlcore.c — netlink socket in a target namespace, message building, attribute parsing,
 * the ACK loop and the dump loop. Written from linux/netlink.h; no state outside the
 * caller's buffers and sockets.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include "nlcore.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

#define SOCK_BUF_BYTES (4 * 1024 * 1024)

void egw_err_set(struct egw_err *err, int code, int index, const char *msg)
{
	if (!err)
		return;
	err->code = code;
	err->index = index;
	snprintf(err->msg, sizeof(err->msg), "%s", msg ? msg : "");
}

uint64_t nl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- building ---- */

void *nl_reserve(struct nlbuf *b, size_t len)
{
	size_t need = NLMSG_ALIGN(len);
	void *p;

	if (b->overflow || b->len + need > b->cap) {
		b->overflow = 1;
		return NULL;
	}
	p = b->p + b->len;
	memset(p, 0, need);
	b->len += need;
	return p;
}

size_t nl_msg_begin(struct nlbuf *b, uint16_t type, uint16_t flags, uint32_t seq)
{
	size_t off = b->len;
	struct nlmsghdr *nlh = nl_reserve(b, NLMSG_HDRLEN);

	if (nlh) {
		nlh->nlmsg_type = type;
		nlh->nlmsg_flags = flags;
		nlh->nlmsg_seq = seq;
	}
	return off;
}

void nl_msg_end(struct nlbuf *b, size_t off)
{
	if (b->overflow)
		return;
	((struct nlmsghdr *)(b->p + off))->nlmsg_len = (uint32_t)(b->len - off);
}

int nl_put(struct nlbuf *b, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a;

	if (len > 0xffff - NLA_HDRLEN) {
		b->overflow = 1;
		return -EMSGSIZE;
	}
	a = nl_reserve(b, NLA_HDRLEN + len);
	if (!a)
		return -EMSGSIZE;
	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	if (len)
		memcpy((uint8_t *)a + NLA_HDRLEN, data, len);
	return 0;
}

int nl_put_u8(struct nlbuf *b, uint16_t type, uint8_t v) { return nl_put(b, type, &v, 1); }
int nl_put_u16(struct nlbuf *b, uint16_t type, uint16_t v) { return nl_put(b, type, &v, 2); }
int nl_put_u32(struct nlbuf *b, uint16_t type, uint32_t v) { return nl_put(b, type, &v, 4); }
int nl_put_str(struct nlbuf *b, uint16_t type, const char *s) { return nl_put(b, type, s, strlen(s) + 1); }

size_t nl_nest_begin(struct nlbuf *b, uint16_t type)
{
	size_t off = b->len;
	struct nlattr *a = nl_reserve(b, NLA_HDRLEN);

	if (a)
		a->nla_type = type | NLA_F_NESTED;
	return off;
}

int nl_nest_end(struct nlbuf *b, size_t off)
{
	size_t len;

	if (b->overflow)
		return -EMSGSIZE;
	len = b->len - off;
	if (len > 0xffff)
		return -EMSGSIZE;
	((struct nlattr *)(b->p + off))->nla_len = (uint16_t)len;
	return 0;
}

/* ---- parsing ---- */

void nl_attr_it(struct nlattr_it *it, const void *p, size_t len)
{
	it->p = p;
	it->left = len;
}

int nl_attr_next(struct nlattr_it *it, const struct nlattr **out)
{
	const struct nlattr *a;
	size_t step;

	if (it->left < NLA_HDRLEN)
		return 0;
	a = (const struct nlattr *)it->p;
	if (a->nla_len < NLA_HDRLEN || a->nla_len > it->left)
		return 0;
	step = NLA_ALIGN(a->nla_len);
	if (step > it->left)
		step = it->left;
	it->p += step;
	it->left -= step;
	*out = a;
	return 1;
}

/* Fixed-width getters tolerate short attributes (fuzzed input) by reading what is there. */
static void attr_copy(const struct nlattr *a, void *out, size_t width)
{
	size_t n = nl_attr_len(a);

	memset(out, 0, width);
	memcpy(out, nl_attr_data(a), n < width ? n : width);
}

uint8_t nl_get_u8(const struct nlattr *a) { uint8_t v; attr_copy(a, &v, 1); return v; }
uint16_t nl_get_u16(const struct nlattr *a) { uint16_t v; attr_copy(a, &v, 2); return v; }
uint32_t nl_get_u32(const struct nlattr *a) { uint32_t v; attr_copy(a, &v, 4); return v; }
uint64_t nl_get_u64(const struct nlattr *a) { uint64_t v; attr_copy(a, &v, 8); return v; }

int nl_parse_error(const struct nlmsghdr *nlh, char *msg, size_t cap, uint32_t *offset)
{
	const struct nlmsgerr *e;
	size_t skip;
	struct nlattr_it it;
	const struct nlattr *a;

	if (msg && cap)
		msg[0] = 0;
	if (offset)
		*offset = UINT32_MAX;
	if (nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(*e))
		return -EBADMSG;
	e = NLMSG_DATA(nlh);
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return e->error;
	/* The echoed request is the header only when NLM_F_CAPPED, else the whole message. */
	skip = sizeof(*e);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		skip += e->msg.nlmsg_len > NLMSG_HDRLEN ? NLMSG_ALIGN(e->msg.nlmsg_len) - NLMSG_HDRLEN : 0;
	if (NLMSG_HDRLEN + skip > nlh->nlmsg_len)
		return e->error;
	nl_attr_it(&it, (const uint8_t *)NLMSG_DATA(nlh) + skip, nlh->nlmsg_len - NLMSG_HDRLEN - skip);
	while (nl_attr_next(&it, &a)) {
		if (nl_attr_type(a) == NLMSGERR_ATTR_MSG && msg && cap) {
			size_t n = nl_attr_len(a);

			if (n >= cap)
				n = cap - 1;
			memcpy(msg, nl_attr_data(a), n);
			msg[n] = 0;
			n = strnlen(msg, n);
			while (n && msg[n - 1] == '\n')
				msg[--n] = 0;
		} else if (nl_attr_type(a) == NLMSGERR_ATTR_OFFS && offset) {
			*offset = nl_get_u32(a);
		}
	}
	return e->error;
}

/* ---- sockets ---- */

static void sock_tune(int fd)
{
	int one = 1, size = SOCK_BUF_BYTES;

	/* Best effort: ext-ACK text, capped ACKs (no echo of 64 KiB requests), strict dumps. */
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

static int socket_here(int protocol)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);

	if (fd < 0)
		return -errno;
	sock_tune(fd);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

int egw_nl_open(int ns_fd, const char *ns_name, int protocol)
{
	int target = -1, orig = -1, ret;

	if (protocol != NETLINK_ROUTE && protocol != NETLINK_GENERIC)
		return -EINVAL;
	if (ns_fd < 0 && !ns_name)
		return socket_here(protocol);
	if (ns_fd >= 0) {
		target = ns_fd;
	} else {
		target = egw_ns_open(ns_name);
		if (target < 0)
			return target;
	}
	orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig < 0) {
		ret = -errno;
		goto out;
	}
	if (setns(target, CLONE_NEWNET) < 0) {
		ret = -errno;
		goto out;
	}
	ret = socket_here(protocol);
	/* A thread left in a foreign namespace would silently act there later: never return. */
	if (setns(orig, CLONE_NEWNET) < 0)
		abort();
out:
	if (orig >= 0)
		close(orig);
	if (ns_fd < 0 && target >= 0)
		close(target);
	return ret;
}

int nl_send(int fd, const void *buf, size_t len)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	ssize_t n;

	do {
		n = sendto(fd, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != len)
		return -EMSGSIZE;
	return 0;
}

static ssize_t nl_recv(int fd, uint8_t *buf, size_t cap)
{
	ssize_t n;

	do {
		n = recv(fd, buf, cap, MSG_TRUNC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n > cap)
		return -EMSGSIZE;
	return n;
}

/* Serial-number comparison so sequence numbers may wrap. */
static int seq_in(uint32_t s, uint32_t first, uint32_t last)
{
	return (uint32_t)(s - first) <= (uint32_t)(last - first);
}

int nl_wait_acks(int fd, uint8_t *rbuf, size_t rcap, uint32_t first, uint32_t last,
		 nl_error_cb on_error, void *ctx)
{
	for (;;) {
		ssize_t n = nl_recv(fd, rbuf, rcap);
		const struct nlmsghdr *nlh;
		size_t left;

		if (n < 0)
			return (int)n;
		left = (size_t)n;
		for (nlh = (const struct nlmsghdr *)rbuf; NLMSG_OK(nlh, left); nlh = nl_next(nlh, &left)) {
			char msg[EGW_ERRMSG_LEN];
			uint32_t off;
			int code;

			if (nlh->nlmsg_type != NLMSG_ERROR || !seq_in(nlh->nlmsg_seq, first, last))
				continue;
			code = nl_parse_error(nlh, msg, sizeof(msg), &off);
			if (code && on_error)
				on_error(ctx, nlh->nlmsg_seq, code, msg, off);
			if (nlh->nlmsg_seq == last)
				return 0;
		}
	}
}

int nl_dump(int fd, const void *req, size_t len, uint32_t seq, nl_msg_cb on_msg, void *ctx,
	    struct egw_err *err)
{
	uint8_t *rbuf;
	int ret, first_err = 0, intr = 0;

	ret = nl_send(fd, req, len);
	if (ret < 0)
		return ret;
	rbuf = malloc(EGW_RECV_BUF);
	if (!rbuf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = nl_recv(fd, rbuf, EGW_RECV_BUF);
		const struct nlmsghdr *nlh;
		size_t left;

		if (n < 0) {
			ret = (int)n;
			goto out;
		}
		left = (size_t)n;
		for (nlh = (const struct nlmsghdr *)rbuf; NLMSG_OK(nlh, left); nlh = nl_next(nlh, &left)) {
			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
				intr = 1;
			if (nlh->nlmsg_type == NLMSG_DONE) {
				int code = 0;

				if (nlh->nlmsg_len >= NLMSG_HDRLEN + sizeof(int))
					memcpy(&code, NLMSG_DATA(nlh), sizeof(int));
				if (code < 0 && !first_err) {
					first_err = code;
					egw_err_set(err, code, -1, "dump ended with an error");
				}
				ret = first_err ? first_err : (intr ? -EINTR : 0);
				goto out;
			}
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				char msg[EGW_ERRMSG_LEN];
				int code = nl_parse_error(nlh, msg, sizeof(msg), NULL);

				egw_err_set(err, code, -1, msg);
				ret = code ? code : (first_err ? first_err : 0);
				goto out;
			}
			if (!first_err) {
				int r = on_msg(ctx, nlh);

				if (r < 0)
					first_err = r;
			}
		}
	}
out:
	free(rbuf);
	return ret;
}

int egw_genl_family(int fd, const char *name)
{
	uint8_t req[128];
	struct nlbuf b = { .p = req, .cap = sizeof(req) };
	struct genlmsghdr *g;
	size_t off;
	uint8_t *rbuf;
	int ret = -ENOENT, done = 0;
	uint32_t seq = (uint32_t)nl_now_ns();

	if (!name || strlen(name) >= GENL_NAMSIZ)
		return -EINVAL;
	off = nl_msg_begin(&b, GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, seq);
	g = nl_reserve(&b, GENL_HDRLEN);
	if (!g)
		return -EMSGSIZE;
	g->cmd = CTRL_CMD_GETFAMILY;
	g->version = 1;
	nl_put_str(&b, CTRL_ATTR_FAMILY_NAME, name);
	nl_msg_end(&b, off);
	ret = nl_send(fd, b.p, b.len);
	if (ret < 0)
		return ret;
	rbuf = malloc(EGW_RECV_BUF);
	if (!rbuf)
		return -ENOMEM;
	ret = -ENOENT;
	while (!done) {
		ssize_t n = nl_recv(fd, rbuf, EGW_RECV_BUF);
		const struct nlmsghdr *nlh;
		size_t left;

		if (n < 0) {
			ret = (int)n;
			break;
		}
		left = (size_t)n;
		for (nlh = (const struct nlmsghdr *)rbuf; NLMSG_OK(nlh, left); nlh = nl_next(nlh, &left)) {
			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				int code = nl_parse_error(nlh, NULL, 0, NULL);

				if (code)
					ret = code == -ENOENT ? -ENOENT : code;
				done = 1;
			} else if (nlh->nlmsg_type == GENL_ID_CTRL &&
				   nlh->nlmsg_len >= NLMSG_HDRLEN + GENL_HDRLEN) {
				struct nlattr_it it;
				const struct nlattr *a;

				nl_attr_it(&it, (const uint8_t *)NLMSG_DATA(nlh) + GENL_HDRLEN,
					   nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN);
				while (nl_attr_next(&it, &a))
					if (nl_attr_type(a) == CTRL_ATTR_FAMILY_ID)
						ret = nl_get_u16(a);
			}
		}
	}
	free(rbuf);
	return ret;
}
