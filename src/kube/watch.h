/* SPDX-License-Identifier: Apache-2.0 */
/* The incremental decoder of a Kubernetes watch stream: newline-delimited JSON, one
 * {"type":..., "object":{...}} per line, fed in chunks split anywhere. Invariants: every byte is
 * searched for a newline exactly once, a partial line never grows past max_line bytes, and after
 * the first error the decoder stays failed (the watch is restarted) until it is reset. */
#ifndef AIT_KUBE_WATCH_H
#define AIT_KUBE_WATCH_H

#include <json-c/json.h>
#include <stddef.h>

#include "core/status.h"

/* Default bound of one line (one event): 16 MiB. */
#define AIT_WATCH_MAX_LINE_DEFAULT ((size_t)16 * 1024 * 1024)

typedef enum ait_watch_event_type {
    AIT_WATCH_ADDED,
    AIT_WATCH_MODIFIED,
    AIT_WATCH_DELETED,
    AIT_WATCH_BOOKMARK,
    AIT_WATCH_ERROR, /* object is a metav1.Status; see ait_watch_error_status() */
} ait_watch_event_type;

typedef struct ait_watch_event {
    ait_watch_event_type type;
    /* Returns borrowed, valid until the callback returns; the callback may take its own
     * reference with json_object_get() and then modify or keep it. Always a JSON object. */
    json_object *object;
} ait_watch_event;

/* Called once per decoded event, in stream order. Return AIT_OK to go on; any other status
 * stops the decoding and is returned by ait_watch_decoder_feed() (the decoder stays usable:
 * the bytes after that line are kept for the next feed). */
typedef ait_status (*ait_watch_event_cb)(void *ctx, const ait_watch_event *ev);

typedef struct ait_watch_decoder ait_watch_decoder;

/* Returns owned, free with ait_watch_decoder_free(). max_line bounds one line in bytes without
 * its newline (0 = AIT_WATCH_MAX_LINE_DEFAULT). */
ait_watch_decoder *ait_watch_decoder_new(size_t max_line);
void ait_watch_decoder_free(ait_watch_decoder *d);

/* Forgets any partial line and a previous error, keeping the memory (for a new watch). */
void ait_watch_decoder_reset(ait_watch_decoder *d);

/* Feeds len bytes of the stream (borrowed) and calls cb for each complete line. Blank lines are
 * skipped. Errors: AIT_ERR_PARSE for a line that is not JSON or not a watch event (unknown type,
 * missing object), AIT_ERR_TOO_LARGE for a line over max_line; both are sticky (every later
 * feed returns the same code until ait_watch_decoder_reset()). Events before the bad line are
 * delivered. Runs on the caller's thread; a decoder is used by one thread at a time. */
ait_status ait_watch_decoder_feed(ait_watch_decoder *d, const char *data, size_t len,
                                  ait_watch_event_cb cb, void *ctx, ait_error *err) AIT_WUR;

/* Returns the number of bytes of an incomplete line held since the last newline. */
size_t ait_watch_decoder_pending(const ait_watch_decoder *d);

/* Maps the metav1.Status of an ERROR event (borrowed) to a typed status: code 410 (or reason
 * "Expired"/"Gone") gives AIT_ERR_GONE, other codes as ait_status_from_http(), and a Status
 * without a usable code AIT_ERR_INTERNAL. Fills err with the Status message. Never AIT_OK. */
ait_status ait_watch_error_status(json_object *status, ait_error *err);

/* Returns "ADDED", "MODIFIED", ... for a type. Never NULL. */
const char *ait_watch_event_type_str(ait_watch_event_type t);

#endif
