/*
 * nlcore.h — private netlink core shared by wg.c and rt.c (not part of the cffi contract).
 *
 * A struct nlbuf is a caller-owned byte buffer that messages are appended to. Appends never
 * write past `cap`: when something does not fit, `overflow` is set and the buffer length is
 * left where it was, so a builder can roll back to a saved length and close the message.
 */
#ifndef EGW_NLCORE_H
#define EGW_NLCORE_H

#include <stddef.h>
#include <stdint.h>
#include <linux/netlink.h>

#include "egw_nl.h"

#define EGW_RECV_BUF (256 * 1024)

struct nlbuf {
	uint8_t *p;
	size_t len;
	size_t cap;
	int overflow;
};

/*
 * Step to the next message without NLMSG_NEXT's size_t underflow: a final message whose length is
 * not a multiple of 4 (never sent by the kernel, but possible in fuzzed input) ends the walk.
 */
static inline const struct nlmsghdr *nl_next(const struct nlmsghdr *h, size_t *left)
{
	size_t step = NLMSG_ALIGN(h->nlmsg_len);

	if (step >= *left) {
		*left = 0;
		return h;
	}
	*left -= step;
	return (const struct nlmsghdr *)((const uint8_t *)h + step);
}

/* appending */
size_t nl_msg_begin(struct nlbuf *b, uint16_t type, uint16_t flags, uint32_t seq);
void nl_msg_end(struct nlbuf *b, size_t off);
void *nl_reserve(struct nlbuf *b, size_t len);
int nl_put(struct nlbuf *b, uint16_t type, const void *data, size_t len);
int nl_put_u8(struct nlbuf *b, uint16_t type, uint8_t v);
int nl_put_u16(struct nlbuf *b, uint16_t type, uint16_t v);
int nl_put_u32(struct nlbuf *b, uint16_t type, uint32_t v);
int nl_put_str(struct nlbuf *b, uint16_t type, const char *s);
size_t nl_nest_begin(struct nlbuf *b, uint16_t type);
/* returns -EMSGSIZE when the nest grew past 65535 bytes (the length field is 16 bits) */
int nl_nest_end(struct nlbuf *b, size_t off);

/* parsing: iterate attributes in [p, p+len); returns 0 when done, 1 with *a set */
struct nlattr_it {
	const uint8_t *p;
	size_t left;
};
void nl_attr_it(struct nlattr_it *it, const void *p, size_t len);
int nl_attr_next(struct nlattr_it *it, const struct nlattr **a);
static inline const void *nl_attr_data(const struct nlattr *a) { return (const uint8_t *)a + NLA_HDRLEN; }
static inline size_t nl_attr_len(const struct nlattr *a) { return a->nla_len - NLA_HDRLEN; }
static inline uint16_t nl_attr_type(const struct nlattr *a) { return a->nla_type & NLA_TYPE_MASK; }
uint8_t nl_get_u8(const struct nlattr *a);
uint16_t nl_get_u16(const struct nlattr *a);
uint32_t nl_get_u32(const struct nlattr *a);
uint64_t nl_get_u64(const struct nlattr *a);

/* errors */
void egw_err_set(struct egw_err *err, int code, int index, const char *msg);

/* I/O */
uint64_t nl_now_ns(void);
int nl_send(int fd, const void *buf, size_t len);

/*
 * Receive replies to requests with sequence numbers [first, last] until the ACK or error for
 * `last` arrives. For every NLMSG_ERROR with a non-zero code, on_error(ctx, seq, code, msg,
 * offset) is called (offset = ext-ACK NLMSGERR_ATTR_OFFS or UINT32_MAX). Returns 0 or -errno
 * of a transport failure.
 */
typedef void (*nl_error_cb)(void *ctx, uint32_t seq, int code, const char *msg, uint32_t offset);
int nl_wait_acks(int fd, uint8_t *rbuf, size_t rcap, uint32_t first, uint32_t last,
		 nl_error_cb on_error, void *ctx);

/*
 * Send one dump request and feed each reply message to on_msg until NLMSG_DONE. Returns 0,
 * -EINTR when any part carried NLM_F_DUMP_INTR (the dump was read to the end first), the
 * negative error from NLMSG_DONE / NLMSG_ERROR (with ext-ACK text in err), or the first
 * negative value returned by on_msg (reading continues to the end so the socket stays usable).
 */
typedef int (*nl_msg_cb)(void *ctx, const struct nlmsghdr *nlh);
int nl_dump(int fd, const void *req, size_t len, uint32_t seq, nl_msg_cb on_msg, void *ctx,
	    struct egw_err *err);

/* Parse an NLMSG_ERROR payload: code (<= 0), ext-ACK message into msg (cap bytes), offset. */
int nl_parse_error(const struct nlmsghdr *nlh, char *msg, size_t cap, uint32_t *offset);

#endif
