/*
 * adopt.h - watching a descriptor another library owns (libpq's connection,
 * curl's sockets) from the lws loop.
 *
 * lws closes whatever it adopts when the wsi goes, while the owning library
 * closes its descriptor itself: so lws is given a dup() of it, and the two
 * closes never meet. The wsi reports readiness of the shared socket to the
 * protocol named at adoption, with the caller's pointer as its opaque user
 * data.
 */
#ifndef COMMON_ADOPT_H
#define COMMON_ADOPT_H

#include <libwebsockets.h>

/*
 * Adopts a close-on-exec dup() of fd into vh as a raw file served by the
 * protocol called protocol, with opaque as its user data. Returns 0 with
 * *wsi set; -errno when fd could not be duplicated (nothing to undo); or
 * -EIO when lws refused the copy. In that last case the copy is not closed
 * here: on some of lws's failure paths a half-made wsi keeps it and closes
 * it with the vhost, and closing a number twice could hit an unrelated
 * descriptor.
 */
int adopt_dup(struct lws_vhost *vh, int fd, const char *protocol, void *opaque, struct lws **wsi);

/*
 * Stops watching: the wsi forgets its opaque pointer at once, so none of
 * its later callbacks (the close included) reach the caller, and lws closes
 * the dup() on its next pass. NULL is ignored.
 */
void adopt_release(struct lws *wsi);

#endif
