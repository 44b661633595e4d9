// SPDX-License-Identifier: MIT
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "remote/page_store.h"

#define RAM_PAGES 256

static const uint8_t test_secret[] = "file-store-secret";

static struct page_store_params params(uint64_t ram_pages)
{
	return (struct page_store_params){
		.namespace_name = "vm-file",
		.secret = test_secret,
		.secret_len = sizeof(test_secret) - 1,
		.ram_pages = ram_pages,
	};
}

/* A scratch directory in the test's own. */
static int scratch_dir(char *buf, size_t len)
{
	snprintf(buf, len, "%s/store-file-XXXXXX", harness_tmpdir());
	return mkdtemp(buf) ? 0 : -errno;
}

static void join(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static int open_file_store(const char *path, uint64_t ram_pages,
			   struct page_store **s, struct errmsg *err)
{
	struct page_store_params p = params(ram_pages);
	char spec[600];

	snprintf(spec, sizeof(spec), "file:%s", path);
	return page_store_open(spec, &p, s, err);
}

/* Page @page's test pattern, varied by @gen so rewrites are visible. */
static void fill_page(uint8_t *data, uint64_t page, unsigned gen)
{
	for (unsigned i = 0; i < PAGE_STORE_PAGE; i++)
		data[i] = (uint8_t)(page * 31 + i * 7 + gen * 101);
}

static bool page_is(const uint8_t *data, uint64_t page, unsigned gen)
{
	uint8_t want[PAGE_STORE_PAGE];

	fill_page(want, page, gen);
	return !memcmp(data, want, PAGE_STORE_PAGE);
}

/* A run of @count pages from @first at generation @gen, its buffers
 * allocated; false when out of memory. */
static bool run_new(struct page_run *run, uint64_t first, uint32_t count,
		    unsigned gen)
{
	uint32_t *gens = malloc(count * sizeof(*gens));

	*run = (struct page_run){ first, count,
				  malloc((size_t)count * PAGE_STORE_PAGE),
				  malloc((size_t)count * PAGE_TAG_SIZE), gens };
	for (uint32_t i = 0; gens && i < count; i++)
		gens[i] = gen;
	return run->data && run->tags && gens;
}

static void run_del(struct page_run *run)
{
	free(run->data);
	free(run->tags);
	free((uint32_t *)run->gens);
}

/* Puts @count pages from @first, contents and generation @gen. */
static int put_pages(struct page_store *s, uint64_t first, uint32_t count,
		     unsigned gen, struct errmsg *err)
{
	struct page_run run;
	int ret = -ENOMEM;

	if (run_new(&run, first, count, gen)) {
		for (uint32_t i = 0; i < count; i++)
			fill_page(run.data + (size_t)i * PAGE_STORE_PAGE,
				  first + i, gen);
		ret = page_store_put(s, &run, 1, err);
	}
	run_del(&run);
	return ret;
}

/* Gets @count pages from @first at generation @gen and checks them. */
static int check_pages(struct page_store *s, uint64_t first, uint32_t count,
		       unsigned gen, struct errmsg *err)
{
	struct page_run run;
	int ret = -ENOMEM;

	if (run_new(&run, first, count, gen))
		ret = page_store_get(s, &run, 1, err);
	for (uint32_t i = 0; i < count && !ret; i++)
		if (!page_is(run.data + (size_t)i * PAGE_STORE_PAGE, first + i, gen))
			ret = -EBADMSG;
	run_del(&run);
	return ret;
}

static void round_trips(struct page_store *s)
{
	struct errmsg err = { "" };
	uint8_t data[3 * PAGE_STORE_PAGE];
	uint8_t tags[3 * PAGE_TAG_SIZE];
	uint32_t gens[3] = { 0 };
	struct page_run two[2] = {
		{ 5, 1, data, tags, gens },
		{ 102, 2, data + PAGE_STORE_PAGE, tags + PAGE_TAG_SIZE, gens + 1 },
	};

	CHECK_EQ(put_pages(s, 5, 1, 0, &err), 0);
	CHECK_EQ(put_pages(s, 100, 7, 0, &err), 0);
	CHECK_EQ(put_pages(s, RAM_PAGES - 1, 1, 0, &err), 0);
	CHECK_EQ(check_pages(s, 5, 1, 0, &err), 0);
	CHECK_EQ(check_pages(s, 100, 7, 0, &err), 0);
	CHECK_EQ(check_pages(s, RAM_PAGES - 1, 1, 0, &err), 0);
	/* a run read back in other shapes than it was written */
	CHECK_EQ(check_pages(s, 103, 3, 0, &err), 0);
	CHECK_EQ(page_store_get(s, two, 2, &err), 0);
	CHECK(page_is(data, 5, 0));
	CHECK(page_is(data + PAGE_STORE_PAGE, 102, 0));
	CHECK(page_is(data + 2 * PAGE_STORE_PAGE, 103, 0));
	/* rewriting replaces */
	CHECK_EQ(put_pages(s, 101, 2, 1, &err), 0);
	CHECK_EQ(check_pages(s, 101, 2, 1, &err), 0);
	CHECK_EQ(check_pages(s, 100, 1, 0, &err), 0);
	CHECK_EQ(check_pages(s, 103, 4, 0, &err), 0);
	/* an empty batch is nothing to do */
	CHECK_EQ(page_store_put(s, NULL, 0, &err), 0);
	CHECK_EQ(page_store_get(s, NULL, 0, &err), 0);
}

TEST(file_store_round_trips_pages_and_runs)
{
	struct page_store *s = NULL;
	struct errmsg err = { "" };
	char dir[256], path[300], desc[400];

	CHECK_EQ(scratch_dir(dir, sizeof(dir)), 0);
	join(path, sizeof(path), dir, "swap");
	CHECK_EQ(open_file_store(path, RAM_PAGES, &s, &err), 0);
	s->ops->describe(s, desc, sizeof(desc));
	CHECK(strstr(desc, path) != NULL);
	round_trips(s);
	page_store_destroy(s);
	CHECK_EQ(access(path, F_OK), -1);
	CHECK_EQ(rmdir(dir), 0);
}

static void missing_pages(struct page_store *s)
{
	struct errmsg err = { "" };

	CHECK_EQ(check_pages(s, 7, 1, 0, &err), -ENOENT);
	CHECK(strstr(err.text, "0x7") != NULL);
	CHECK_EQ(put_pages(s, 10, 4, 0, &err), 0);
	/* one missing page fails the whole run */
	CHECK_EQ(check_pages(s, 9, 3, 0, &err), -ENOENT);
	CHECK(strstr(err.text, "0x9") != NULL);
	CHECK_EQ(check_pages(s, 12, 3, 0, &err), -ENOENT);
	CHECK(strstr(err.text, "0xe") != NULL);
	{
		struct page_run drop = { 11, 2, NULL, NULL };
		struct page_run never = { 200, 5, NULL, NULL };

		CHECK_EQ(page_store_drop(s, &drop, 1, &err), 0);
		CHECK_EQ(page_store_drop(s, &never, 1, &err), 0);
	}
	CHECK_EQ(check_pages(s, 10, 1, 0, &err), 0);
	CHECK_EQ(check_pages(s, 11, 1, 0, &err), -ENOENT);
	CHECK_EQ(check_pages(s, 12, 1, 0, &err), -ENOENT);
	CHECK_EQ(check_pages(s, 13, 1, 0, &err), 0);
	/* a dropped page can be stored again */
	CHECK_EQ(put_pages(s, 12, 1, 3, &err), 0);
	CHECK_EQ(check_pages(s, 12, 1, 3, &err), 0);
}

TEST(file_store_missing_pages_are_enoent)
{
	struct page_store *s = NULL;
	struct errmsg err = { "" };
	char dir[256], path[300];

	CHECK_EQ(scratch_dir(dir, sizeof(dir)), 0);
	join(path, sizeof(path), dir, "swap");
	CHECK_EQ(open_file_store(path, RAM_PAGES, &s, &err), 0);
	missing_pages(s);
	page_store_destroy(s);
	CHECK_EQ(rmdir(dir), 0);
}

static void drop_frees(struct page_store *s, const char *path)
{
	struct page_run run = { 64, 64, NULL, NULL };
	struct errmsg err = { "" };
	struct stat before, after;
	int fd;

	CHECK_EQ(put_pages(s, 64, 64, 0, &err), 0);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(fsync(fd), 0);
	CHECK_EQ(fstat(fd, &before), 0);
	/* 64 pages of 8 sectors each were written */
	CHECK(before.st_blocks >= 64 * 8);
	CHECK_EQ(page_store_drop(s, &run, 1, &err), 0);
	CHECK_EQ(fsync(fd), 0);
	CHECK_EQ(fstat(fd, &after), 0);
	close(fd);
	CHECK(after.st_blocks <= before.st_blocks - 64 * 8);
	/* the file keeps its size: only blocks went */
	CHECK_EQ(after.st_size, before.st_size);
}

TEST(file_store_drop_frees_disk_blocks)
{
	struct page_store *s = NULL;
	struct errmsg err = { "" };
	char dir[256], path[300];

	CHECK_EQ(scratch_dir(dir, sizeof(dir)), 0);
	join(path, sizeof(path), dir, "swap");
	CHECK_EQ(open_file_store(path, RAM_PAGES, &s, &err), 0);
	drop_frees(s, path);
	page_store_destroy(s);
	CHECK_EQ(rmdir(dir), 0);
}

/* A put that fails midway must not leave the old copy looking current:
 * RLIMIT_FSIZE makes the write of a far page fail with EFBIG. */
static void failed_put(struct page_store *s)
{
	struct rlimit old, small = { 64 * PAGE_STORE_PAGE, 0 };
	struct errmsg err = { "" };
	void (*old_handler)(int);
	int ret;

	CHECK_EQ(put_pages(s, 200, 2, 0, &err), 0);
	CHECK_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
	small.rlim_max = old.rlim_max;
	old_handler = signal(SIGXFSZ, SIG_IGN);
	CHECK_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
	ret = put_pages(s, 200, 2, 1, &err);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, old_handler);
	CHECK_EQ(ret, -EFBIG);
	CHECK(strstr(err.text, "0xc8") != NULL);
	CHECK_EQ(check_pages(s, 200, 1, 0, &err), -ENOENT);
	CHECK_EQ(check_pages(s, 201, 1, 0, &err), -ENOENT);
	/* and the store still works */
	CHECK_EQ(put_pages(s, 200, 2, 2, &err), 0);
	CHECK_EQ(check_pages(s, 200, 2, 2, &err), 0);
}

TEST(file_store_failed_put_leaves_pages_unreadable)
{
	struct page_store *s = NULL;
	struct errmsg err = { "" };
	char dir[256], path[300];

	CHECK_EQ(scratch_dir(dir, sizeof(dir)), 0);
	join(path, sizeof(path), dir, "swap");
	CHECK_EQ(open_file_store(path, RAM_PAGES, &s, &err), 0);
	failed_put(s);
	page_store_destroy(s);
	CHECK_EQ(rmdir(dir), 0);
}

struct worker {
	struct page_store *s;
	uint64_t first;
	int failures;
};

/* Each thread owns 32 pages and rewrites them in runs of varied shape. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct errmsg err;

	for (unsigned gen = 0; gen < 40; gen++) {
		uint32_t count = 1 + gen % 8;
		uint64_t first = w->first + (gen * 5) % (32 - count + 1);

		if (put_pages(w->s, first, count, gen, &err) ||
		    check_pages(w->s, first, count, gen, &err))
			w->failures++;
		if (gen % 4 == 3) {
			struct page_run run = { first, count, NULL, NULL };

			if (page_store_drop(w->s, &run, 1, &err) ||
			    check_pages(w->s, first, 1, gen, &err) != -ENOENT)
				w->failures++;
		}
	}
	return NULL;
}

TEST(file_store_concurrent_threads)
{
	struct page_store *s = NULL;
	struct errmsg err = { "" };
	struct worker w[4];
	pthread_t t[4];
	char dir[256];

	CHECK_EQ(scratch_dir(dir, sizeof(dir)), 0);
	/* a directory: an unlinked temporary file */
	CHECK_EQ(open_file_store(dir, RAM_PAGES, &s, &err), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ s, (uint64_t)i * 32 + 3, 0 };
		CHECK_EQ(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	page_store_destroy(s);
	CHECK_EQ(rmdir(dir), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(w[i].failures, 0);
}

static void path_rules(const char *dir)
{
	struct page_store *s = NULL;
	struct errmsg err = { "" };
	char path[300];
	struct stat st;
	int fd;

	/* an existing non-empty file is the user's: refused, untouched */
	join(path, sizeof(path), dir, "precious");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "data", 4), 4);
	close(fd);
	CHECK_EQ(open_file_store(path, RAM_PAGES, &s, &err), -EEXIST);
	CHECK(strstr(err.text, "refusing") != NULL);
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_size, 4);
	CHECK_EQ(unlink(path), 0);

	/* an existing empty file is used, and emptied again at the end */
	join(path, sizeof(path), dir, "empty");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(open_file_store(path, RAM_PAGES, &s, &err), 0);
	CHECK_EQ(put_pages(s, 1, 1, 0, &err), 0);
	CHECK_EQ(check_pages(s, 1, 1, 0, &err), 0);
	page_store_destroy(s);
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_size, 0);
	CHECK_EQ(unlink(path), 0);

	/* a directory: the file inside it has no name */
	CHECK_EQ(open_file_store(dir, RAM_PAGES, &s, &err), 0);
	CHECK_EQ(put_pages(s, 2, 3, 0, &err), 0);
	CHECK_EQ(dir_entries(dir), 0);
	CHECK_EQ(check_pages(s, 2, 3, 0, &err), 0);
	page_store_destroy(s);
	CHECK_EQ(dir_entries(dir), 0);

	/* a new path is created 0600 and exists while the store does */
	join(path, sizeof(path), dir, "new");
	CHECK_EQ(open_file_store(path, RAM_PAGES, &s, &err), 0);
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	/* sized for RAM_PAGES pages and their 16-byte tags, sparse */
	CHECK_EQ(st.st_size, RAM_PAGES * (PAGE_STORE_PAGE + 16));
	page_store_destroy(s);
	CHECK_EQ(stat(path, &st), -1);

	/* a FIFO is not a file to swap to */
	join(path, sizeof(path), dir, "fifo");
	CHECK_EQ(mkfifo(path, 0600), 0);
	CHECK_EQ(open_file_store(path, RAM_PAGES, &s, &err), -EINVAL);
	CHECK(strstr(err.text, "not a regular file") != NULL);
	CHECK_EQ(unlink(path), 0);

	/* a path whose directory does not exist */
	join(path, sizeof(path), dir, "no/such/swap");
	CHECK_EQ(open_file_store(path, RAM_PAGES, &s, &err), -ENOENT);
	CHECK(strstr(err.text, "no/such/swap") != NULL);
}

TEST(file_store_path_rules)
{
	char dir[256];

	CHECK_EQ(scratch_dir(dir, sizeof(dir)), 0);
	path_rules(dir);
	CHECK_EQ(dir_entries(dir), 0);
	CHECK_EQ(rmdir(dir), 0);
}

static void bad_requests(struct page_store *s)
{
	struct errmsg err = { "" };
	uint8_t data[PAGE_STORE_PAGE];
	uint8_t tag[PAGE_TAG_SIZE];
	uint32_t gen = 1;
	struct page_run beyond = { RAM_PAGES, 1, data, tag, &gen };
	struct page_run straddle = { RAM_PAGES - 1, 2, data, tag, &gen };
	struct page_run wrap = { UINT64_MAX, 2, data, tag, &gen };
	struct page_run empty = { 3, 0, data, tag, &gen };
	struct page_run no_buffer = { 3, 1, NULL, tag, &gen };

	CHECK_EQ(page_store_put(s, &beyond, 1, &err), -EINVAL);
	CHECK(strstr(err.text, "outside guest RAM") != NULL);
	CHECK_EQ(page_store_get(s, &straddle, 1, &err), -EINVAL);
	CHECK_EQ(page_store_drop(s, &wrap, 1, &err), -EINVAL);
	CHECK_EQ(page_store_put(s, &empty, 1, &err), -EINVAL);
	CHECK_EQ(page_store_put(s, &no_buffer, 1, &err), -EINVAL);
	CHECK_EQ(page_store_get(s, NULL, 1, &err), -EINVAL);
}

TEST(file_store_rejects_bad_specs_and_requests)
{
	struct page_store *s = NULL;
	struct errmsg err = { "" };
	struct page_store_params p = params(RAM_PAGES);
	char dir[256], path[300];

	CHECK_EQ(page_store_open("file:", &p, &s, &err), -EINVAL);
	CHECK(strstr(err.text, "file:PATH") != NULL);
	CHECK_EQ(scratch_dir(dir, sizeof(dir)), 0);
	join(path, sizeof(path), dir, "swap");
	CHECK_EQ(open_file_store(path, 0, &s, &err), -EINVAL);
	CHECK(strstr(err.text, "pages") != NULL);
	CHECK_EQ(access(path, F_OK), -1);
	CHECK_EQ(open_file_store(path, RAM_PAGES, &s, &err), 0);
	bad_requests(s);
	page_store_destroy(s);
	CHECK_EQ(rmdir(dir), 0);
}

/* Whether pieces (64 bytes at a few offsets) of @page are in file @fd. */
static bool file_shows(int fd, const uint8_t *page)
{
	struct stat st;
	uint8_t *all;
	bool found = false;

	if (fstat(fd, &st) || !(all = malloc((size_t)st.st_size)))
		return false;
	if (pread(fd, all, (size_t)st.st_size, 0) == st.st_size)
		for (size_t off = 0; off + 64 <= PAGE_STORE_PAGE && !found; off += 1000)
			found = memmem(all, (size_t)st.st_size, page + off, 64) != NULL;
	free(all);
	return found;
}

/* The swap file holds sealed pages: a copy of it (a stolen disk, a
 * backup) shows no guest memory; with seal=off it does. */
TEST(file_store_keeps_pages_sealed_unless_seal_off)
{
	static uint8_t clear[PAGE_STORE_PAGE];
	struct page_store *s = NULL;
	struct errmsg err = { "" };
	char dir[256], path[300], spec[320];

	CHECK_EQ(scratch_dir(dir, sizeof(dir)), 0);
	join(path, sizeof(path), dir, "swap");
	for (int off = 0; off < 2; off++) {
		int fd;

		snprintf(spec, sizeof(spec), "%s%s", path, off ? ",seal=off" : "");
		CHECK_EQ(open_file_store(spec, RAM_PAGES, &s, &err), 0);
		CHECK_EQ(put_pages(s, 77, 1, 5, &err), 0);
		fill_page(clear, 77, 5);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		CHECK(fd >= 0);
		CHECK(file_shows(fd, clear) == (off == 1));
		close(fd);
		CHECK_EQ(check_pages(s, 77, 1, 5, &err), 0);
		/* the same page at an older or newer generation: refused */
		CHECK_EQ(check_pages(s, 77, 1, 4, &err), -EBADMSG);
		CHECK(strstr(err.text, "page 77 (generation 4)") != NULL);
		page_store_destroy(s);
	}
	CHECK_EQ(rmdir(dir), 0);
}
