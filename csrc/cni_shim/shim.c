/*
 * kube-egress-gateway-cni — the CNI plugin executable: a thin front end for `egw cni-manager`.
 *
 * The container runtime execs this for every pod on the node, so it must be cheap: it does no CNI logic.
 * It forwards the CNI_* environment and stdin over the root-only unix socket of the long-running
 * cni-manager (framing: egw/model/cniproto.py), waits for the answer within a deadline, prints the
 * returned stdout bytes and exits with the returned status. A Python plugin would pay 30-50 ms of
 * interpreter start per pod; this costs one connect and one round trip.
 *
 * When cni-manager cannot be reached or does not answer in time it falls back to what is safe:
 *   DEL     -> best-effort local cleanup (delete wg0 in CNI_NETNS via rtnetlink), exit 0: DEL never fails;
 *   ADD, CHECK, GC -> CNI error 11 "try again later" (we cannot tell whether the pod needs the gateway,
 *              and must not let it egress with the node's IP);
 *   STATUS  -> CNI error 50 "plugin not available";
 *   VERSION -> answered locally.
 * Errors are JSON on stdout (libcni reads them there); diagnostics go to stderr.
 *
 * Environment: EGW_CNI_SOCKET (socket path; else the config's "socketPath"; else
 * /var/run/kube-egress-gateway/cni.sock),
 * EGW_CNI_TIMEOUT_MS (overall deadline; default 60000 for ADD, 10000 otherwise).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAGIC "EGWCNI1\n"
#define MAGIC_LEN 8
#define MAX_REQUEST (1 << 20)
#define MAX_RESPONSE (4 << 20)
#define DEFAULT_SOCKET "/var/run/kube-egress-gateway/cni.sock"
#define WG_IFNAME "wg0"

static const char *const FORWARDED[] = {
    "CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH", "EGW_CNI_TEST_FAULT", NULL,
};
static const char *const VERSIONS[] = {"0.4.0", "1.0.0", "1.1.0", NULL};
#define SUPPORTED_JSON "[\"0.4.0\",\"1.0.0\",\"1.1.0\"]"

struct buf {
    char *data;
    size_t len, cap;
};

static int buf_put(struct buf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The socket path from the config's "socketPath" (written by cni-manager into the conflist) when it is a
 * plain absolute path; NULL otherwise. Copied into out (size n). */
static const char *config_socket(const struct buf *in, char *out, size_t n) {
    static const char key[] = "\"socketPath\"";
    const char *p = in->data ? memmem(in->data, in->len, key, sizeof key - 1) : NULL;
    if (!p) return NULL;
    const char *end = in->data + in->len;
    p += sizeof key - 1;
    while (p < end && (*p == ' ' || *p == ':' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    if (p >= end || *p != '"' || p + 1 >= end || p[1] != '/') return NULL;
    p++;
    size_t i = 0;
    for (; p < end && *p != '"'; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' || c == '.' ||
                 c == '_' || c == '-';
        if (!ok || i + 1 >= n) return NULL;
        out[i++] = c;
    }
    if (p >= end) return NULL;
    out[i] = 0;
    return out;
}

/* The config's cniVersion if it is one we speak (so it is safe to echo), else the latest. */
static const char *config_version(const struct buf *in) {
    static const char key[] = "\"cniVersion\"";
    const char *p = in->data ? memmem(in->data, in->len, key, sizeof key - 1) : NULL;
    if (p) {
        const char *end = in->data + in->len;
        p += sizeof key - 1;
        while (p < end && (*p == ' ' || *p == ':' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
        if (p < end && *p == '"') {
            p++;
            for (int i = 0; VERSIONS[i]; i++) {
                size_t n = strlen(VERSIONS[i]);
                if ((size_t)(end - p) > n && memcmp(p, VERSIONS[i], n) == 0 && p[n] == '"') return VERSIONS[i];
            }
        }
    }
    return VERSIONS[2];
}

static int cni_error(const struct buf *in, int code, const char *msg, const char *details) {
    /* msg/details are our own constant texts or strerror(): no quoting needed. */
    printf("{\"cniVersion\":\"%s\",\"code\":%d,\"msg\":\"%s\",\"details\":\"%s\"}\n", config_version(in), code, msg,
           details);
    fflush(stdout);
    return 1;
}

/* Wait until fd is ready for `events` or the deadline passes: 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, long long deadline) {
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = events};
        long long left = deadline - now_ms();
        if (left <= 0) return -ETIMEDOUT;
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        return r == 0 ? -ETIMEDOUT : 0;
    }
}

static int write_all(int fd, const char *p, size_t n, long long deadline) {
    while (n > 0) {
        int r = wait_fd(fd, POLLOUT, deadline);
        if (r < 0) return r;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, struct buf *out, long long deadline) {
    char tmp[16384];
    for (;;) {
        int r = wait_fd(fd, POLLIN, deadline);
        if (r < 0) return r;
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return -errno;
        }
        if (n == 0) return 0;
        if (out->len + (size_t)n > MAX_RESPONSE) return -EMSGSIZE;
        if (buf_put(out, tmp, (size_t)n) < 0) return -ENOMEM;
    }
}

/* One request/response exchange; returns the manager's exit status (>= 0) or -errno. */
static int call_manager(const char *path, const struct buf *req, struct buf *resp, long long deadline) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) return -ENAMETOOLONG;
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    int rc = 0;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        if (errno != EINPROGRESS && errno != EAGAIN) {
            rc = -errno;
            goto out;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        long long left = deadline - now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
            rc = -ETIMEDOUT;
            goto out;
        }
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            rc = -err;
            goto out;
        }
    }
    if ((rc = write_all(fd, req->data, req->len, deadline)) < 0) goto out;
    shutdown(fd, SHUT_WR);
    if ((rc = read_all(fd, resp, deadline)) < 0) goto out;
    /* MAGIC, decimal status, '\n', stdout bytes. */
    if (resp->len < MAGIC_LEN + 2 || memcmp(resp->data, MAGIC, MAGIC_LEN) != 0) {
        rc = -EPROTO;
        goto out;
    }
    int status = 0;
    size_t i = MAGIC_LEN;
    for (; i < resp->len && i < MAGIC_LEN + 4 && resp->data[i] >= '0' && resp->data[i] <= '9'; i++)
        status = status * 10 + (resp->data[i] - '0');
    if (i == MAGIC_LEN || i >= resp->len || resp->data[i] != '\n' || status > 255) {
        rc = -EPROTO;
        goto out;
    }
    memmove(resp->data, resp->data + i + 1, resp->len - i - 1);
    resp->len -= i + 1;
    rc = status;
out:
    close(fd);
    return rc;
}

/* DEL fallback: remove wg0 from the pod netns. Missing netns or link is success. */
static void delete_wg_link(const char *netns) {
    if (!netns || !*netns) return;
    int nsfd = open(netns, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) return;
    if (setns(nsfd, CLONE_NEWNET) < 0) {
        fprintf(stderr, "kube-egress-gateway-cni: setns(%s): %s\n", netns, strerror(errno));
        close(nsfd);
        return;
    }
    close(nsfd);
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (s < 0) return;
    struct {
        struct nlmsghdr nh;
        struct ifinfomsg ifi;
        char attrs[64];
    } req;
    memset(&req, 0, sizeof req);
    req.nh.nlmsg_type = RTM_DELLINK;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.nh.nlmsg_seq = 1;
    req.ifi.ifi_family = AF_UNSPEC;
    struct rtattr *rta = (struct rtattr *)req.attrs;
    rta->rta_type = IFLA_IFNAME;
    rta->rta_len = RTA_LENGTH(sizeof WG_IFNAME);
    memcpy(RTA_DATA(rta), WG_IFNAME, sizeof WG_IFNAME);
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof req.ifi) + RTA_ALIGN(rta->rta_len);
    struct timeval tv = {.tv_sec = 2};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (send(s, &req, req.nh.nlmsg_len, 0) >= 0) {
        char ack[1024];
        ssize_t n = recv(s, ack, sizeof ack, 0);
        if (n >= (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
            struct nlmsgerr *e = NLMSG_DATA((struct nlmsghdr *)ack);
            if (e->error && e->error != -ENODEV)
                fprintf(stderr, "kube-egress-gateway-cni: delete %s: %s\n", WG_IFNAME, strerror(-e->error));
        }
    }
    close(s);
}

int main(void) {
    const char *cmd = getenv("CNI_COMMAND");
    cmd = cmd ? cmd : "";
    struct buf in = {0}, req = {0}, resp = {0};

    char tmp[16384];
    for (;;) {
        ssize_t n = read(STDIN_FILENO, tmp, sizeof tmp);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (in.len + (size_t)n > MAX_REQUEST || buf_put(&in, tmp, (size_t)n) < 0)
            return cni_error(&in, 5, "network configuration on stdin is too large", "");
    }

    buf_put(&req, MAGIC, MAGIC_LEN);
    for (int i = 0; FORWARDED[i]; i++) {
        const char *v = getenv(FORWARDED[i]);
        if (!v) continue;
        buf_put(&req, FORWARDED[i], strlen(FORWARDED[i]));
        buf_put(&req, "=", 1);
        buf_put(&req, v, strlen(v) + 1); /* including the NUL terminator */
    }
    buf_put(&req, "", 1);
    if (in.len) buf_put(&req, in.data, in.len);
    if (req.len > MAX_REQUEST) return cni_error(&in, 5, "request too large", "");

    /* Socket: EGW_CNI_SOCKET, else the config's socketPath, else the default. */
    char conf_path[108];
    const char *path = getenv("EGW_CNI_SOCKET");
    if (!path || !*path) path = config_socket(&in, conf_path, sizeof conf_path);
    if (!path) path = DEFAULT_SOCKET;
    long long timeout = strcmp(cmd, "ADD") == 0 ? 60000 : 10000;
    const char *t = getenv("EGW_CNI_TIMEOUT_MS");
    if (t && *t) {
        long long v = atoll(t);
        if (v > 0) timeout = v;
    }
    int rc = call_manager(path, &req, &resp, now_ms() + timeout);
    if (rc >= 0) {
        if (resp.len) fwrite(resp.data, 1, resp.len, stdout);
        fflush(stdout);
        return rc;
    }

    const char *why = strerror(-rc);
    fprintf(stderr, "kube-egress-gateway-cni: cni-manager at %s unavailable for %s: %s\n", path, cmd, why);
    if (strcmp(cmd, "VERSION") == 0) {
        printf("{\"cniVersion\":\"%s\",\"supportedVersions\":" SUPPORTED_JSON "}\n", config_version(&in));
        return 0;
    }
    if (strcmp(cmd, "DEL") == 0) {
        delete_wg_link(getenv("CNI_NETNS"));
        return 0;
    }
    if (strcmp(cmd, "STATUS") == 0) return cni_error(&in, 50, "plugin not available: cni-manager unreachable", why);
    return cni_error(&in, 11, "try again later: cni-manager unreachable", why);
}
