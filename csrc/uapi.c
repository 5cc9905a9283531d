/*
 * uapi.c — WireGuard over the cross-platform userspace API (wireguard-go's unix socket):
 * one `set=1` transaction per egw_uapi_set, `get=1` for egw_uapi_get. Keys travel in hex.
 * The text grammar is the documented one: key=value lines, a blank line ends a request, the
 * reply ends with errno=N and a blank line.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "nlcore.h"

struct tbuf {
	char *p;
	size_t len, cap;
	int overflow;
};

static void tput(struct tbuf *t, const char *s, size_t n)
{
	if (t->overflow || t->len + n > t->cap) {
		t->overflow = 1;
		return;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
}

static void tputs(struct tbuf *t, const char *s) { tput(t, s, strlen(s)); }

static void tputu(struct tbuf *t, const char *key, unsigned long long v)
{
	char tmp[64];
	int n = snprintf(tmp, sizeof(tmp), "%s=%llu\n", key, v);

	tput(t, tmp, (size_t)n);
}

static void tputkey(struct tbuf *t, const char *key, const uint8_t k[EGW_KEY_LEN])
{
	static const char hex[] = "0123456789abcdef";
	char tmp[EGW_KEY_LEN * 2 + 1];
	int i;

	for (i = 0; i < EGW_KEY_LEN; i++) {
		tmp[2 * i] = hex[k[i] >> 4];
		tmp[2 * i + 1] = hex[k[i] & 15];
	}
	tmp[EGW_KEY_LEN * 2] = '\n';
	tputs(t, key);
	tput(t, "=", 1);
	tput(t, tmp, sizeof(tmp));
}

static void tputaddr(struct tbuf *t, int family, const uint8_t *addr)
{
	char tmp[INET6_ADDRSTRLEN];

	if (!inet_ntop(family, addr, tmp, sizeof(tmp))) {
		t->overflow = 1;
		return;
	}
	tputs(t, tmp);
}

long egw_uapi_build(char *buf, size_t cap, const struct egw_wg_device *dev,
		    const struct egw_wg_peer *peers, uint32_t n_peers, const struct egw_wg_aip *aips)
{
	struct tbuf t = { .p = buf, .cap = cap };
	uint32_t i, j;

	if (!buf || !dev || (n_peers && (!peers || !aips)))
		return -EINVAL;
	tputs(&t, "set=1\n");
	if (dev->flags & EGW_WGDEV_HAS_PRIVATE_KEY)
		tputkey(&t, "private_key", dev->private_key);
	if (dev->flags & EGW_WGDEV_HAS_LISTEN_PORT)
		tputu(&t, "listen_port", dev->listen_port);
	if (dev->flags & EGW_WGDEV_HAS_FWMARK)
		tputu(&t, "fwmark", dev->fwmark);
	if (dev->flags & EGW_WGDEV_REPLACE_PEERS)
		tputs(&t, "replace_peers=true\n");
	for (i = 0; i < n_peers && !t.overflow; i++) {
		const struct egw_wg_peer *p = &peers[i];

		tputkey(&t, "public_key", p->public_key);
		/* remove / update_only must directly follow public_key (they decide creation) */
		if (p->flags & EGW_WGPEER_REMOVE_ME) {
			tputs(&t, "remove=true\n");
			continue;
		}
		if (p->flags & EGW_WGPEER_UPDATE_ONLY)
			tputs(&t, "update_only=true\n");
		if (p->flags & EGW_WGPEER_HAS_PRESHARED_KEY)
			tputkey(&t, "preshared_key", p->preshared_key);
		if (p->flags & EGW_WGPEER_HAS_ENDPOINT) {
			char port[16];

			tputs(&t, "endpoint=");
			if (p->endpoint_family == AF_INET6)
				tputs(&t, "[");
			tputaddr(&t, p->endpoint_family == AF_INET6 ? AF_INET6 : AF_INET, p->endpoint_addr);
			if (p->endpoint_family == AF_INET6)
				tputs(&t, "]");
			snprintf(port, sizeof(port), ":%u\n", p->endpoint_port);
			tputs(&t, port);
		}
		if (p->flags & EGW_WGPEER_HAS_KEEPALIVE)
			tputu(&t, "persistent_keepalive_interval", p->keepalive);
		if (p->flags & EGW_WGPEER_REPLACE_AIPS)
			tputs(&t, "replace_allowed_ips=true\n");
		for (j = 0; j < p->n_aips; j++) {
			const struct egw_wg_aip *a = &aips[p->first_aip + j];
			char cidr[8];

			tputs(&t, "allowed_ip=");
			tputaddr(&t, a->family == AF_INET6 ? AF_INET6 : AF_INET, a->addr);
			snprintf(cidr, sizeof(cidr), "/%u\n", a->cidr);
			tputs(&t, cidr);
		}
	}
	tputs(&t, "\n");
	return t.overflow ? -ENOSPC : (long)t.len;
}

/* ---- parsing ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_hexkey(const char *v, size_t n, uint8_t out[EGW_KEY_LEN])
{
	int i;

	if (n != EGW_KEY_LEN * 2)
		return -1;
	for (i = 0; i < EGW_KEY_LEN; i++) {
		int hi = hexval(v[2 * i]), lo = hexval(v[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int parse_ull(const char *v, size_t n, unsigned long long *out)
{
	char tmp[32];
	char *end;

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, v, n);
	tmp[n] = 0;
	if (tmp[0] == '-')
		return -1;
	errno = 0;
	*out = strtoull(tmp, &end, 10);
	return (*end || errno) ? -1 : 0;
}

static int parse_ip(const char *v, size_t n, int *family, uint8_t addr[16])
{
	char tmp[INET6_ADDRSTRLEN + 1];

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, v, n);
	tmp[n] = 0;
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, tmp, addr) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, tmp, addr) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return -1;
}

static void parse_endpoint(const char *v, size_t n, struct egw_wg_peer *p)
{
	const char *colon = NULL, *host = v;
	size_t hlen, i;
	unsigned long long port;
	int fam;

	for (i = n; i > 0; i--)
		if (v[i - 1] == ':') {
			colon = v + i - 1;
			break;
		}
	if (!colon)
		return;
	hlen = (size_t)(colon - v);
	if (hlen >= 2 && v[0] == '[' && v[hlen - 1] == ']') {
		host = v + 1;
		hlen -= 2;
	}
	if (parse_ull(colon + 1, n - (size_t)(colon - v) - 1, &port) < 0 || port > 65535)
		return;
	if (parse_ip(host, hlen, &fam, p->endpoint_addr) < 0)
		return;
	p->endpoint_family = (uint16_t)fam;
	p->endpoint_port = (uint16_t)port;
	p->flags |= EGW_WGPEER_HAS_ENDPOINT;
}

int egw_uapi_parse(const char *text, size_t len, struct egw_wg_device *dev,
		   struct egw_wg_peer *peers, uint32_t *n_peers, struct egw_wg_aip *aips,
		   uint32_t *n_aips)
{
	uint32_t cap_p, cap_a, np = 0, na = 0;
	struct egw_wg_peer cur;
	int in_peer = 0, err = 0;
	size_t pos = 0;
	static const uint8_t zero[EGW_KEY_LEN];

	if (!text || !dev || !n_peers || !n_aips)
		return -EINVAL;
	cap_p = peers ? *n_peers : 0;
	cap_a = aips ? *n_aips : 0;
	memset(dev, 0, sizeof(*dev));
	memset(&cur, 0, sizeof(cur));
	while (pos < len) {
		const char *line = text + pos, *eq, *nl = memchr(line, '\n', len - pos);
		size_t llen = nl ? (size_t)(nl - line) : len - pos, klen, vlen;
		const char *v;
		unsigned long long u;

		pos += llen + 1;
		if (llen == 0)
			break;
		eq = memchr(line, '=', llen);
		if (!eq)
			return -EBADMSG;
		klen = (size_t)(eq - line);
		v = eq + 1;
		vlen = llen - klen - 1;
#define KEY(s) (klen == sizeof(s) - 1 && !memcmp(line, s, klen))
		if (KEY("errno")) {
			if (parse_ull(v, vlen, &u) < 0 && !(vlen > 1 && v[0] == '-' && parse_ull(v + 1, vlen - 1, &u) == 0))
				return -EBADMSG;
			err = (int)(u > 4095 ? EPROTO : u);
		} else if (KEY("public_key")) {
			if (in_peer) {
				if (np < cap_p)
					peers[np] = cur;
				np++;
			}
			memset(&cur, 0, sizeof(cur));
			if (parse_hexkey(v, vlen, cur.public_key) < 0)
				return -EBADMSG;
			cur.first_aip = na;
			in_peer = 1;
		} else if (!in_peer) {
			if (KEY("private_key")) {
				if (parse_hexkey(v, vlen, dev->private_key) < 0)
					return -EBADMSG;
				dev->flags |= EGW_WGDEV_HAS_PRIVATE_KEY;
			} else if (KEY("listen_port")) {
				if (parse_ull(v, vlen, &u) < 0 || u > 65535)
					return -EBADMSG;
				dev->listen_port = (uint16_t)u;
				dev->flags |= EGW_WGDEV_HAS_LISTEN_PORT;
			} else if (KEY("fwmark")) {
				if (parse_ull(v, vlen, &u) < 0 || u > 0xffffffffull)
					return -EBADMSG;
				dev->fwmark = (uint32_t)u;
				dev->flags |= EGW_WGDEV_HAS_FWMARK;
			}
		} else if (KEY("preshared_key")) {
			if (parse_hexkey(v, vlen, cur.preshared_key) < 0)
				return -EBADMSG;
			if (memcmp(cur.preshared_key, zero, EGW_KEY_LEN))
				cur.flags |= EGW_WGPEER_HAS_PRESHARED_KEY;
		} else if (KEY("endpoint")) {
			parse_endpoint(v, vlen, &cur);
		} else if (KEY("persistent_keepalive_interval")) {
			if (parse_ull(v, vlen, &u) < 0 || u > 65535)
				return -EBADMSG;
			cur.keepalive = (uint16_t)u;
			if (u)
				cur.flags |= EGW_WGPEER_HAS_KEEPALIVE;
		} else if (KEY("last_handshake_time_sec")) {
			if (parse_ull(v, vlen, &u) == 0)
				cur.last_handshake_sec = (int64_t)u;
		} else if (KEY("last_handshake_time_nsec")) {
			if (parse_ull(v, vlen, &u) == 0)
				cur.last_handshake_nsec = (int64_t)u;
		} else if (KEY("rx_bytes")) {
			if (parse_ull(v, vlen, &u) == 0)
				cur.rx_bytes = u;
		} else if (KEY("tx_bytes")) {
			if (parse_ull(v, vlen, &u) == 0)
				cur.tx_bytes = u;
		} else if (KEY("allowed_ip")) {
			const char *slash = memchr(v, '/', vlen);
			struct egw_wg_aip a = { 0 };
			int fam;

			if (!slash || parse_ip(v, (size_t)(slash - v), &fam, a.addr) < 0 ||
			    parse_ull(slash + 1, vlen - (size_t)(slash - v) - 1, &u) < 0 ||
			    u > (fam == AF_INET ? 32u : 128u))
				return -EBADMSG;
			a.family = (uint16_t)fam;
			a.cidr = (uint8_t)u;
			if (na < cap_a)
				aips[na] = a;
			na++;
			cur.n_aips++;
		}
#undef KEY
	}
	if (in_peer) {
		if (np < cap_p)
			peers[np] = cur;
		np++;
	}
	*n_peers = np;
	*n_aips = na;
	if (err)
		return -err;
	return (np > cap_p || na > cap_a) ? -ENOSPC : 0;
}

/* ---- socket I/O ---- */

static int uapi_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (!path || strlen(path) >= sizeof(sa.sun_path))
		return -EINVAL;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read until the reply's terminating blank line; *out is malloc'd. */
static long read_reply(int fd, char **out)
{
	size_t cap = 64 * 1024, len = 0;
	char *p = malloc(cap);

	if (!p)
		return -ENOMEM;
	for (;;) {
		ssize_t r;

		if (len + 4096 > cap) {
			char *q = realloc(p, cap * 2);

			if (!q) {
				free(p);
				return -ENOMEM;
			}
			p = q;
			cap *= 2;
		}
		r = read(fd, p + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = -errno;

			free(p);
			return e;
		}
		len += (size_t)r;
		if (r == 0 || (len >= 2 && p[len - 1] == '\n' && p[len - 2] == '\n'))
			break;
	}
	p[len] = 0;
	*out = p;
	return (long)len;
}

int egw_uapi_set(const char *sock_path, const struct egw_wg_device *dev,
		 const struct egw_wg_peer *peers, uint32_t n_peers, const struct egw_wg_aip *aips,
		 struct egw_stats *stats, struct egw_err *err)
{
	size_t cap = 256;
	uint32_t i;
	char *text = NULL, *reply = NULL;
	long len, rlen;
	int fd = -1, ret;
	uint64_t t0;
	struct egw_wg_device rdev;
	uint32_t zp = 0, za = 0;

	egw_err_set(err, 0, -1, "");
	if (!dev || (n_peers && (!peers || !aips)))
		return -EINVAL;
	for (i = 0; i < n_peers; i++)
		cap += 320 + 64 * (size_t)peers[i].n_aips;
	text = malloc(cap);
	if (!text)
		return -ENOMEM;
	len = egw_uapi_build(text, cap, dev, peers, n_peers, aips);
	if (len < 0) {
		ret = (int)len;
		goto out;
	}
	t0 = nl_now_ns();
	fd = uapi_connect(sock_path);
	if (fd < 0) {
		ret = fd;
		egw_err_set(err, ret, -1, "cannot connect to the userspace WireGuard socket");
		goto out;
	}
	ret = write_all(fd, text, (size_t)len);
	if (ret < 0)
		goto out;
	rlen = read_reply(fd, &reply);
	if (rlen < 0) {
		ret = (int)rlen;
		goto out;
	}
	if (stats) {
		uint64_t dt = nl_now_ns() - t0;

		stats->messages++;
		stats->sends++;
		stats->bytes += (uint64_t)len;
		if (dt > stats->max_send_ns)
			stats->max_send_ns = dt;
	}
	ret = egw_uapi_parse(reply, (size_t)rlen, &rdev, NULL, &zp, NULL, &za);
	if (ret == -ENOSPC)
		ret = 0;	/* a set reply has no peers; only errno matters */
	if (ret < 0)
		egw_err_set(err, ret, -1, "the userspace WireGuard implementation rejected the transaction");
out:
	if (fd >= 0)
		close(fd);
	free(text);
	free(reply);
	return ret;
}

int egw_uapi_get(const char *sock_path, struct egw_wg_device *dev, struct egw_wg_peer *peers,
		 uint32_t *n_peers, struct egw_wg_aip *aips, uint32_t *n_aips, struct egw_err *err)
{
	static const char req[] = "get=1\n\n";
	char *reply = NULL;
	long rlen;
	int fd, ret;

	egw_err_set(err, 0, -1, "");
	if (!dev || !n_peers || !n_aips)
		return -EINVAL;
	fd = uapi_connect(sock_path);
	if (fd < 0) {
		egw_err_set(err, fd, -1, "cannot connect to the userspace WireGuard socket");
		return fd;
	}
	ret = write_all(fd, req, sizeof(req) - 1);
	if (ret == 0) {
		rlen = read_reply(fd, &reply);
		if (rlen < 0)
			ret = (int)rlen;
		else
			ret = egw_uapi_parse(reply, (size_t)rlen, dev, peers, n_peers, aips, n_aips);
	}
	close(fd);
	free(reply);
	return ret;
}
