// SPDX-License-Identifier: MIT
/*
 * The file page store (file:PATH): a local swap file, the baseline the
 * remote stores are measured against and a test aid.
 *
 * Layout: two regions in one sparse file sized for the whole guest,
 *   [0, ram_pages * 4096)                page n's data at n * 4096
 *   [ram_pages * 4096, + ram_pages * 16) page n's tag at base + n * 16
 * Keeping the data page-aligned (rather than interleaving 4112-byte
 * slots) is what lets drop punch whole blocks out of the file and lets a
 * run be one contiguous range: a run costs one pwrite/pread for its data
 * and one for its tags.  Data and tags are written as given: sealed
 * (page_seal.h) unless the store was opened with seal=off.
 *
 * Which pages are held is a bitmap in memory, not the file contents: a
 * hole reads as zeroes, which must not pass for a stored page.  A put
 * clears the run's bits before writing and sets them after the writes
 * completed, so a put that fails halfway leaves the pages unreadable
 * (-ENOENT), never half old and half new.
 *
 * PATH rules (the user's data is never clobbered):
 *   - a path that does not exist is created (O_EXCL, mode 0600) and
 *     removed again at destroy;
 *   - an existing empty regular file is used and truncated back to empty
 *     at destroy (guest memory does not outlive the store on disk);
 *   - an existing directory gets an unlinked O_TMPFILE inside it, which
 *     vanishes when the store is destroyed or the process dies (where the
 *     file system has no O_TMPFILE, e.g. overlayfs before Linux 6.6, a
 *     uniquely named file is created and unlinked at once: the same,
 *     but for an instant in which a crash leaves the name behind);
 *   - anything else (a non-empty file, a device, a FIFO) is refused.
 *
 * Threads: pread/pwrite/fallocate on distinct pages need no lock; the
 * bitmap is updated with atomic bit operations.  Ops on the same page must
 * not overlap (the pager owns a page's state while it moves it).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "remote/store_backends.h"
#include "util/full_io.h"

#define TAG_BYTES PAGE_TAG_SIZE
/* ram_pages * (4096 + 16) must fit in off_t with room to spare */
#define FILE_STORE_MAX_PAGES (1ull << 40)

enum file_origin {
	FILE_NOT_OPEN,
	FILE_CREATED,		/* we created PATH: unlink it at destroy */
	FILE_WAS_EMPTY,		/* the user's empty file: truncate it */
	FILE_TMPFILE,		/* unlinked O_TMPFILE: nothing to clean */
};

struct file_store {
	struct page_store base;
	int fd;
	enum file_origin origin;
	char *path;
	dev_t dev;		/* identity of what we created, so destroy */
	ino_t ino;		/* never unlinks a file someone put there */
	uint64_t ram_pages;
	off_t tags_base;
	uint64_t *present;	/* bit per page, atomic */
};

static struct file_store *to_file(struct page_store *s)
{
	return (struct file_store *)s;
}

static bool page_test(const struct file_store *fs, uint64_t page)
{
	uint64_t word = __atomic_load_n(&fs->present[page / 64],
					__ATOMIC_ACQUIRE);

	return word & (1ull << (page % 64));
}

/* Sets or clears @count bits from @first, a word at a time. */
static void pages_mark(struct file_store *fs, uint64_t first, uint64_t count,
		       bool present)
{
	while (count) {
		uint64_t bit = first % 64;
		uint64_t n = 64 - bit < count ? 64 - bit : count;
		uint64_t mask = (n == 64 ? ~0ull : ((1ull << n) - 1)) << bit;

		if (present)
			__atomic_fetch_or(&fs->present[first / 64], mask,
					  __ATOMIC_RELEASE);
		else
			__atomic_fetch_and(&fs->present[first / 64], ~mask,
					   __ATOMIC_RELEASE);
		first += n;
		count -= n;
	}
}

static int check_runs(const struct file_store *fs, const struct page_run *runs,
		      size_t n, bool need_buffers, struct errmsg *err)
{
	return page_runs_check("file store", runs, n, fs->ram_pages,
			       need_buffers, err);
}

static int file_io(int fd, bool write, void *buf, size_t len, uint64_t off)
{
	/* a file we sized cannot end early: a short read is -EIO */
	return write ? pwrite_full(fd, buf, len, off) :
		       pread_full(fd, buf, len, off);
}

static int run_io(struct file_store *fs, const struct page_run *r, bool write)
{
	int ret;

	ret = file_io(fs->fd, write, r->data, (size_t)r->count * PAGE_STORE_PAGE,
		      r->first * PAGE_STORE_PAGE);
	if (ret)
		return ret;
	return file_io(fs->fd, write, r->tags, (size_t)r->count * TAG_BYTES,
		       (uint64_t)fs->tags_base + r->first * TAG_BYTES);
}

static int file_put(struct page_store *s, const struct page_run *runs,
		    size_t n, struct errmsg *err)
{
	struct file_store *fs = to_file(s);
	int ret = check_runs(fs, runs, n, true, err);

	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++) {
		pages_mark(fs, runs[i].first, runs[i].count, false);
		ret = run_io(fs, &runs[i], true);
		if (ret)
			return errmsg_set(err, ret,
					  "file store: writing pages 0x%llx+%u to %s: %s",
					  (unsigned long long)runs[i].first,
					  runs[i].count, fs->path, strerror(-ret));
		pages_mark(fs, runs[i].first, runs[i].count, true);
	}
	return 0;
}

static int file_get(struct page_store *s, const struct page_run *runs,
		    size_t n, struct errmsg *err)
{
	struct file_store *fs = to_file(s);
	int ret = check_runs(fs, runs, n, true, err);

	if (ret)
		return ret;
	/* all or nothing: look before reading anything */
	for (size_t i = 0; i < n; i++)
		for (uint64_t p = runs[i].first;
		     p < runs[i].first + runs[i].count; p++)
			if (!page_test(fs, p))
				return errmsg_set(err, -ENOENT,
						  "file store: page 0x%llx was never stored (or was dropped)",
						  (unsigned long long)p);
	for (size_t i = 0; i < n; i++) {
		ret = run_io(fs, &runs[i], false);
		if (ret)
			return errmsg_set(err, ret,
					  "file store: reading pages 0x%llx+%u from %s: %s",
					  (unsigned long long)runs[i].first,
					  runs[i].count, fs->path, strerror(-ret));
	}
	return 0;
}

static int file_drop(struct page_store *s, const struct page_run *runs,
		     size_t n, struct errmsg *err)
{
	struct file_store *fs = to_file(s);
	int ret = check_runs(fs, runs, n, false, err);

	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++) {
		const struct page_run *r = &runs[i];

		pages_mark(fs, r->first, r->count, false);
		/* The tags' 16 bytes a page are left: freeing them would
		 * punch nothing smaller than a block. */
		if (fallocate(fs->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)(r->first * PAGE_STORE_PAGE),
			      (off_t)r->count * PAGE_STORE_PAGE) &&
		    errno != EOPNOTSUPP)
			return errmsg_set(err, -errno,
					  "file store: freeing pages 0x%llx+%u in %s: %s",
					  (unsigned long long)r->first, r->count,
					  fs->path, strerror(errno));
	}
	return 0;
}

static void file_describe(struct page_store *s, char *buf, size_t len)
{
	struct file_store *fs = to_file(s);

	snprintf(buf, len, "file %s%s", fs->path,
		 fs->origin == FILE_TMPFILE ? " (unlinked temporary file)" : "");
}

/* Leaves the user's file as we found it.  A failure has nowhere to go
 * (the store is going away) and loses nothing of the user's. */
static void empty_again(struct file_store *fs)
{
	int ret = ftruncate(fs->fd, 0);

	(void)ret;
}

static void file_destroy(struct page_store *s)
{
	struct file_store *fs = to_file(s);
	struct stat st;

	if (fs->origin == FILE_WAS_EMPTY)
		empty_again(fs);
	if (fs->origin == FILE_CREATED && !stat(fs->path, &st) &&
	    st.st_dev == fs->dev && st.st_ino == fs->ino)
		unlink(fs->path);
	close(fs->fd);
	free(fs->present);
	free(fs->path);
	free(fs);
}

static const struct page_store_ops file_ops = {
	.put = file_put,
	.get = file_get,
	.drop = file_drop,
	.describe = file_describe,
	.destroy = file_destroy,
};

/* An unlinked file in directory @dir, without O_TMPFILE; -errno. */
static int open_unlinked_in(const char *dir)
{
	size_t len = strlen(dir) + sizeof("/.rackvm-pages-XXXXXX");
	char *name = malloc(len);
	int fd, e;

	if (!name)
		return -ENOMEM;
	snprintf(name, len, "%s/.rackvm-pages-XXXXXX", dir);
	fd = mkostemp(name, O_CLOEXEC);
	e = errno;
	if (fd >= 0 && unlink(name)) {
		e = errno;
		close(fd);
		fd = -1;
	}
	free(name);
	return fd >= 0 ? fd : -e;
}

/* Opens PATH by the rules in the header comment; the fd is in fs->fd. */
static int open_path(struct file_store *fs, struct errmsg *err)
{
	const char *path = fs->path;
	struct stat st;

	fs->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fs->fd >= 0) {
		fs->origin = FILE_CREATED;
		goto identify;
	}
	if (errno != EEXIST)
		return errmsg_set(err, -errno, "file store: cannot create %s: %s",
				  path, strerror(errno));
	fs->fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fs->fd < 0 && errno == EISDIR) {
		int e;

		fs->fd = open(path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		e = fs->fd < 0 ? -errno : 0;
		if (e == -EOPNOTSUPP) {
			e = open_unlinked_in(path);
			fs->fd = e < 0 ? -1 : e;
		}
		if (fs->fd < 0)
			return errmsg_set(err, e,
					  "file store: cannot make a temporary file in %s: %s",
					  path, strerror(-e));
		fs->origin = FILE_TMPFILE;
		return 0;
	}
	if (fs->fd < 0)
		return errmsg_set(err, -errno, "file store: cannot open %s: %s",
				  path, strerror(errno));
	/* fstat, not stat: what we check is what we opened */
	if (fstat(fs->fd, &st))
		return errmsg_set(err, -errno, "file store: %s: %s", path,
				  strerror(errno));
	if (!S_ISREG(st.st_mode))
		return errmsg_set(err, -EINVAL,
				  "file store: %s is not a regular file or a directory",
				  path);
	if (st.st_size)
		return errmsg_set(err, -EEXIST,
				  "file store: refusing to overwrite %s (%lld bytes): "
				  "give a new path, an empty file or a directory",
				  path, (long long)st.st_size);
	fs->origin = FILE_WAS_EMPTY;
identify:
	if (fstat(fs->fd, &st))
		return errmsg_set(err, -errno, "file store: %s: %s", path,
				  strerror(errno));
	fs->dev = st.st_dev;
	fs->ino = st.st_ino;
	return 0;
}

/* Undoes open_path(), whether it finished or not. */
static void close_path(struct file_store *fs)
{
	if (fs->fd < 0)
		return;
	if (fs->origin == FILE_CREATED)
		unlink(fs->path);
	else if (fs->origin == FILE_WAS_EMPTY)
		empty_again(fs);
	close(fs->fd);
}

int store_file_open(const char *args, const struct page_store_params *p,
		    struct page_store **out, struct errmsg *err)
{
	struct file_store *fs;
	uint64_t words;
	off_t size;
	int ret;

	if (!*args)
		return errmsg_set(err, -EINVAL, "file store: give a path: file:PATH");
	if (!p->ram_pages || p->ram_pages > FILE_STORE_MAX_PAGES)
		return errmsg_set(err, -EINVAL,
				  "file store: guest RAM of %llu pages is out of range",
				  (unsigned long long)p->ram_pages);
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return errmsg_set(err, -ENOMEM, "file store: out of memory");
	fs->base.ops = &file_ops;
	fs->fd = -1;
	fs->ram_pages = p->ram_pages;
	fs->tags_base = (off_t)(p->ram_pages * PAGE_STORE_PAGE);
	words = (p->ram_pages + 63) / 64;
	fs->present = calloc(words, sizeof(*fs->present));
	fs->path = strdup(args);
	if (!fs->present || !fs->path) {
		ret = errmsg_set(err, -ENOMEM, "file store: out of memory");
		goto fail;
	}
	ret = open_path(fs, err);
	if (ret)
		goto fail;
	/* sparse: only pages actually put take disk space */
	size = fs->tags_base + (off_t)(p->ram_pages * TAG_BYTES);
	if (ftruncate(fs->fd, size)) {
		ret = errmsg_set(err, -errno, "file store: sizing %s to %lld bytes: %s",
				 fs->path, (long long)size, strerror(errno));
		goto fail;
	}
	*out = &fs->base;
	return 0;
fail:
	close_path(fs);
	free(fs->present);
	free(fs->path);
	free(fs);
	return ret;
}
