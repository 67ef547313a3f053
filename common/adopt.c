/*
 * adopt.c - a dup() of a foreign descriptor watched by lws (see adopt.h).
 */
#include "adopt.h"

#include <errno.h>
#include <fcntl.h>

int
adopt_dup(struct lws_vhost *vh, int fd, const char *protocol, void *opaque, struct lws **wsi)
{
    *wsi = NULL;
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0)
        return -errno;
    lws_adopt_desc_t info = {
        .vh = vh,
        .type = LWS_ADOPT_RAW_FILE_DESC,
        .fd.filefd = d,
        .vh_prot_name = protocol,
        .opaque = opaque,
    };
    *wsi = lws_adopt_descriptor_vhost_via_info(&info);
    if (!*wsi)
        return -EIO;
    lws_set_opaque_user_data(*wsi, opaque);
    return 0;
}

void
adopt_release(struct lws *wsi)
{
    if (!wsi)
        return;
    lws_set_opaque_user_data(wsi, NULL);
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}
