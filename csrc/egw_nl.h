/*
 * egw_nl.h — the contract between egw's Python layer and its small C core.
 *
 * This header is both the C interface and the cffi cdef: csrc/ffibuild.py feeds the
 * text between the EGW_CDEF_BEGIN and EGW_CDEF_END markers to cffi verbatim, so the
 * Python binding can never drift from the C code.
 *
 * Conventions that hold for every call:
 *   - A call returns 0 (or a non-negative count / file descriptor) on success and
 *     -errno on failure. Nothing is reported through errno itself.
 *   - No call keeps global state; every call is safe to run from several threads
 *     at once with the GIL released (cffi releases it around each call).
 *   - A call that works inside another network namespace enters it on the calling
 *     thread only for the duration of the call and restores the thread's original
 *     namespace before returning, on every path. No Python code ever runs inside a
 *     foreign namespace.
 *   - Namespace names are the file names under /run/netns. A name is accepted only
 *     if it is 1..NAME_MAX bytes of [A-Za-z0-9_.-], is not "." or "..": anything
 *     else is -EINVAL before any file is touched.
 *
 * Calls:
 *   egw_ns_open(name)       open /run/netns/<name> read-only (O_CLOEXEC); returns the fd.
 *   egw_ns_open_current()   open the calling thread's current network namespace; returns the fd.
 *   egw_ns_same(fd_a, fd_b) 1 when both fds refer to the same namespace, 0 when not.
 *   egw_ns_name_valid(name) 1 when name passes the rule above, 0 when not (no I/O).
 */
#ifndef EGW_NL_H
#define EGW_NL_H

/* EGW_CDEF_BEGIN */
int egw_ns_name_valid(const char *name);
int egw_ns_open(const char *name);
int egw_ns_open_current(void);
int egw_ns_same(int fd_a, int fd_b);
/* EGW_CDEF_END */

#endif
