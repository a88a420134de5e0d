/*-------------------------------------------------------------------------
 *
 * input.c
 *	  line-oriented command sources: stdin and the control FIFO
 *
 * Commands arrive one per line on stdin and, optionally, on a named pipe
 * (--control PATH).  Both are read non-blocking from the main loop's poll(),
 * so a silent source never holds up signal handling.
 *
 * End of file means different things for the two:
 *
 *	- stdin: the source is closed for good, but the broker keeps running
 *	  (tests start it with stdin from /dev/null; only signals stop it).
 *	- the FIFO: the last writer went away.  We close and reopen it, so the
 *	  next "echo down all > FIFO" is read as well.  Reopening also clears the
 *	  POLLHUP state Linux keeps reporting on a writer-less FIFO, which would
 *	  otherwise make poll() spin.
 *
 * A final line without a newline is still executed at end of file.  Lines
 * longer than DEVBROKER_LINE_MAX are reported to the handler as NULL once and
 * skipped up to the next newline.
 *
 * IDENTIFICATION
 *	  devbroker/input.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devbroker.h"

static int
fifo_open(const char *path)
{
	return open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
}

/*
 * Create the FIFO at "path" unless it exists, then open it for reading.
 * Sets *created when we made it (so the caller removes it at exit).
 * Returns 0, or -1 with errno set and a message logged.
 */
int
line_source_open_fifo(line_source *src, const char *path, bool *created)
{
	struct stat sb;

	memset(src, 0, sizeof(*src));
	src->name = path;
	src->fd = -1;
	src->is_fifo = true;
	*created = false;

	if (stat(path, &sb) == 0)
	{
		if (!S_ISFIFO(sb.st_mode))
		{
			tk_log(TK_LOG_ERROR, "control path \"%s\" exists and is not a FIFO",
				   path);
			errno = EEXIST;
			return -1;
		}
	}
	else if (errno == ENOENT)
	{
		if (mkfifo(path, 0600) != 0)
		{
			tk_log(TK_LOG_ERROR, "could not create FIFO \"%s\": %s",
				   path, strerror(errno));
			return -1;
		}
		*created = true;
	}
	else
	{
		tk_log(TK_LOG_ERROR, "could not stat \"%s\": %s",
			   path, strerror(errno));
		return -1;
	}

	src->fd = fifo_open(path);
	if (src->fd < 0)
	{
		tk_log(TK_LOG_ERROR, "could not open FIFO \"%s\": %s",
			   path, strerror(errno));
		return -1;
	}
	return 0;
}

void
line_source_init_fd(line_source *src, const char *name, int fd)
{
	int			flags;

	memset(src, 0, sizeof(*src));
	src->name = name;
	src->fd = fd;
	src->is_fifo = false;

	flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		(void) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Hand the buffered bytes [start, start + len) to the handler as one line. */
static void
emit_line(line_source *src, size_t start, size_t len, line_handler handler,
		  void *arg)
{
	char		line[DEVBROKER_LINE_MAX + 1];
	size_t		end = len;

	memcpy(line, src->buf + start, len);
	if (end > 0 && line[end - 1] == '\r')
		end--;
	line[end] = '\0';
	handler(line, arg);
}

static void
handle_eof(line_source *src, line_handler handler, void *arg)
{
	if (src->len > 0 && !src->discarding)
		emit_line(src, 0, src->len, handler, arg);
	src->len = 0;
	src->discarding = false;

	close(src->fd);
	src->fd = -1;
	if (!src->is_fifo)
	{
		tk_log(TK_LOG_INFO, "%s closed; still running, stop with SIGTERM or SIGINT",
			   src->name);
		return;
	}

	src->fd = fifo_open(src->name);
	if (src->fd < 0)
		tk_log(TK_LOG_ERROR, "could not reopen FIFO \"%s\": %s; control commands through it are disabled",
			   src->name, strerror(errno));
}

/*
 * Read what is available on the source and call "handler" for each
 * complete line.  Called when poll() reports the descriptor readable (or
 * hung up).
 */
void
line_source_read(line_source *src, line_handler handler, void *arg)
{
	for (;;)
	{
		ssize_t		n;
		size_t		total;
		size_t		start;
		char	   *nl;

		if (src->fd < 0)
			return;

		n = read(src->fd, src->buf + src->len, sizeof(src->buf) - src->len);
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			tk_log(TK_LOG_WARNING, "could not read %s: %s",
				   src->name, strerror(errno));
			handle_eof(src, handler, arg);
			return;
		}
		if (n == 0)
		{
			handle_eof(src, handler, arg);
			return;
		}

		/* hand out every complete line, keep the incomplete tail */
		total = src->len + (size_t) n;
		start = 0;
		while ((nl = memchr(src->buf + start, '\n', total - start)) != NULL)
		{
			size_t		end = (size_t) (nl - src->buf);

			if (src->discarding)
				src->discarding = false;
			else
				emit_line(src, start, end - start, handler, arg);
			start = end + 1;
		}
		memmove(src->buf, src->buf + start, total - start);
		src->len = total - start;

		if (src->len == sizeof(src->buf))
		{
			if (!src->discarding)
				handler(NULL, arg);
			src->discarding = true;
			src->len = 0;
		}
	}
}
