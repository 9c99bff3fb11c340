/*
 * unit_sections.c - unit tests of kvs.c's multi-process machinery and error
 * paths: a second handle sees the first's writes (change counter drops its
 * cache), a lock wait is interrupted by the host callback and reported to
 * the host as beginning and ending (lock_wait), four processes
 * creating one file at once all open the same valid file and leave no temp
 * file, a write section whose file growth hits ENOSPC is discarded (earlier
 * data intact, file size unchanged, check clean), and a damaged page gives
 * ECORRUPT naming it, then every write is refused and the file is untouched.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <xxhash.h>
#include "kvs.h"
#include "tap.h"

static char dir[] = "/tmp/unit_sections.XXXXXX";
static char path[256];

static int calls;
static int interrupt_after_5(void *arg)
{
    (void)arg;
    return ++calls >= 5;
}

static int wait_begins, wait_ends, waiting_now;
static void count_waits(void *arg, int waiting)
{
    (void)arg;
    if (waiting)
        wait_begins++;
    else
        wait_ends++;
    waiting_now = waiting;
}

static long enospc_from;   /* pwrite at or beyond this offset fails ENOSPC; -1 off */
static ssize_t full_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    struct stat st;
    if (enospc_from >= 0 && fstat(fd, &st) == 0 && off + (off_t)n > st.st_size) {
        errno = ENOSPC;
        return -1;
    }
    return pwrite(fd, buf, n, off);
}

int main(void)
{
    kvs_options o;
    kvs *a, *b;
    kvs_slice v;
    kvs_stats st;
    char k[32];
    int i, rc;

    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/t.kvs", dir);

    /* ---- two handles, one file */
    kvs_options_init(&o);
    o.flags = KVS_CREATE;
    o.cache_pages = 16;
    TAP_RC(kvs_open(path, &o, &a), KVS_OK);
    TAP_RC(kvs_open(path, &o, &b), KVS_OK);
    TAP_RC(kvs_put(a, "x", 1, "1", 1, 0), KVS_OK);
    TAP_RC(kvs_get(b, "x", 1, &v), KVS_OK);
    TAP_RC(kvs_put(a, "x", 1, "2", 1, 0), KVS_OK);
    TAP_RC(kvs_get(b, "x", 1, &v), KVS_OK);
    tap_ok(v.len == 1 && ((const char *)v.data)[0] == '2', "second handle sees the replace");
    TAP_RC(kvs_stats_get(b, &st), KVS_OK);
    tap_ok(st.cache_invalidations >= 1, "its cache was dropped (%llu invalidations)",
           (unsigned long long)st.cache_invalidations);
    /* a holds a write section: b's read waits and is interrupted */
    TAP_RC(kvs_begin(a, KVS_WRITE), KVS_OK);
    TAP_RC(kvs_close(b), KVS_OK);
    o.flags = 0;
    o.interrupted = interrupt_after_5;
    calls = 0;
    rc = kvs_open(path, &o, &b);
    tap_ok(rc == KVS_EINTR && calls == 5, "open waits for the lock and is interrupted (%s, %d polls)",
           kvs_strerror(rc), calls);
    o.interrupted = NULL;
    TAP_RC(kvs_end(a), KVS_OK);
    TAP_RC(kvs_open(path, &o, &b), KVS_OK);
    TAP_RC(kvs_begin(b, KVS_READ), KVS_OK);
    {
        /* shared locks coexist; a writer waits */
        kvs_options o2 = o;
        o2.interrupted = interrupt_after_5;
        o2.lock_wait = count_waits;
        calls = 0;
        TAP_RC(kvs_begin(a, KVS_READ), KVS_OK);
        TAP_RC(kvs_end(a), KVS_OK);
        kvs_close(a);
        TAP_RC(kvs_open(path, &o2, &a), KVS_OK);
        TAP_RC(kvs_begin(a, KVS_READ), KVS_OK);
        TAP_RC(kvs_end(a), KVS_OK);
        tap_ok(wait_begins == 0 && wait_ends == 0,
               "a shared lock beside another reader is no wait (%d begins)", wait_begins);
        TAP_RC(kvs_begin(a, KVS_WRITE), KVS_EINTR);
        tap_ok(kvs_in_section(a) == -1, "interrupted begin leaves no section");
        tap_ok(wait_begins == 1 && wait_ends == 1 && !waiting_now,
               "the host was told the writer's wait began and ended (%d, %d)",
               wait_begins, wait_ends);
    }
    TAP_RC(kvs_end(b), KVS_OK);
    TAP_RC(kvs_close(a), KVS_OK);
    TAP_RC(kvs_close(b), KVS_OK);
    unlink(path);

    /* ---- four processes create one file at once */
    {
        pid_t pids[4];
        int ok = 0, stray = 0;
        DIR *d;
        struct dirent *de;
        for (i = 0; i < 4; i++) {
            pids[i] = fork();
            if (pids[i] == 0) {
                kvs_options oc;
                kvs *db;
                int j, r;
                char key[16];
                kvs_options_init(&oc);
                oc.flags = KVS_CREATE;
                r = kvs_open(path, &oc, &db);
                if (r != KVS_OK)
                    _exit(1);
                for (j = 0; j < 200 && r == KVS_OK; j++) {
                    snprintf(key, sizeof key, "p%d-%d", i, j);
                    r = kvs_put(db, key, strlen(key), "v", 1, 0);
                }
                _exit(kvs_close(db) == KVS_OK && r == KVS_OK ? 0 : 1);
            }
        }
        for (i = 0; i < 4; i++) {
            int status;
            waitpid(pids[i], &status, 0);
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                ok++;
        }
        tap_ok(ok == 4, "4 processes created and wrote one file (%d ok)", ok);
        o.flags = 0;
        TAP_RC(kvs_open(path, &o, &a), KVS_OK);
        TAP_RC(kvs_check(a), KVS_OK);
        TAP_RC(kvs_stats_get(a, &st), KVS_OK);
        tap_ok(st.records == 800, "all 800 records of the 4 creators are there (%llu)",
               (unsigned long long)st.records);
        kvs_close(a);
        d = opendir(dir);
        while ((de = readdir(d)) != NULL)
            if (strstr(de->d_name, ".tmp."))
                stray++;
        closedir(d);
        tap_ok(stray == 0, "no temporary file left behind");
    }

    /* ---- ENOSPC while growing: the section is discarded */
    {
        kvs_os fos = *kvs_os_posix();
        off_t size0, size1;
        uint64_t h0, h1;
        fos.pwrite = full_pwrite;
        enospc_from = -1;
        o.flags = 0;
        o.os = &fos;
        o.cache_pages = 64;
        TAP_RC(kvs_open(path, &o, &a), KVS_OK);
        h0 = tap_file_hash(path, &size0);
        enospc_from = 1;
        TAP_RC(kvs_begin(a, KVS_WRITE), KVS_OK);
        rc = KVS_OK;
        for (i = 0; i < 5000 && rc == KVS_OK; i++) {
            snprintf(k, sizeof k, "grow-%d", i);
            rc = kvs_put(a, k, strlen(k), path, 100, 0);
        }
        tap_ok(rc == KVS_ENOSPC && kvs_errno(a) == ENOSPC, "put reports ENOSPC when the file must grow (after %d puts): %s",
               i, kvs_errmsg(a));
        TAP_RC(kvs_put(a, "more", 4, "x", 1, 0), KVS_ENOSPC);
        TAP_RC(kvs_end(a), KVS_ENOSPC);
        h1 = tap_file_hash(path, &size1);
        tap_ok(h0 == h1 && size0 == size1, "file unchanged, byte for byte (%lld bytes)", (long long)size1);
        enospc_from = -1;
        TAP_RC(kvs_get(a, "grow-0", 6, &v), KVS_NOTFOUND);
        TAP_RC(kvs_get(a, "p0-1", 4, &v), KVS_OK);
        TAP_RC(kvs_check(a), KVS_OK);
        TAP_RC(kvs_put(a, "after", 5, "y", 1, 0), KVS_OK);
        TAP_RC(kvs_check(a), KVS_OK);
        kvs_close(a);
        o.os = NULL;
    }

    /* ---- no-steal: a tiny cache, a section rewriting many existing pages,
     * then a failure: the file is untouched; without the failure, all there */
    {
        kvs_os fos = *kvs_os_posix();
        off_t size0, size1;
        uint64_t h0, h1;
        int bad = 0;
        fos.pwrite = full_pwrite;
        enospc_from = -1;
        o.flags = 0;
        o.os = &fos;
        o.cache_pages = 8;
        TAP_RC(kvs_open(path, &o, &a), KVS_OK);
        TAP_RC(kvs_begin(a, KVS_WRITE), KVS_OK);
        for (i = 0; i < 3000; i++) {
            snprintf(k, sizeof k, "s%d", i);
            kvs_put(a, k, strlen(k), path, 60, 0);
        }
        TAP_RC(kvs_end(a), KVS_OK);
        h0 = tap_file_hash(path, &size0);
        TAP_RC(kvs_begin(a, KVS_WRITE), KVS_OK);
        for (i = 0; i < 3000; i++) {          /* same keys, same sizes: no growth */
            snprintf(k, sizeof k, "s%d", i);
            kvs_put(a, k, strlen(k), "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ", 60, 0);
        }
        h1 = tap_file_hash(path, &size1);
        tap_ok(h0 == h1, "3000 replaces through 8 frames: the file is untouched before kvs_end (spilled)");
        enospc_from = 1;
        rc = KVS_OK;
        for (i = 0; i < 5000 && rc == KVS_OK; i++) {   /* new keys: the file must grow */
            snprintf(k, sizeof k, "grow-%d", i);
            rc = kvs_put(a, k, strlen(k), path, 100, 0);
        }
        tap_ok(rc == KVS_ENOSPC, "then a put that must grow the file fails with ENOSPC (%s)", kvs_strerror(rc));
        TAP_RC(kvs_end(a), KVS_ENOSPC);
        enospc_from = -1;
        h1 = tap_file_hash(path, &size1);
        tap_ok(h0 == h1 && size0 == size1, "after the failed section the file is byte for byte as before");
        TAP_RC(kvs_check(a), KVS_OK);
        TAP_RC(kvs_begin(a, KVS_WRITE), KVS_OK);
        for (i = 0; i < 3000; i++) {
            snprintf(k, sizeof k, "s%d", i);
            kvs_put(a, k, strlen(k), "YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY", 60, 0);
        }
        TAP_RC(kvs_end(a), KVS_OK);
        kvs_close(a);
        o.os = NULL;
        TAP_RC(kvs_open(path, &o, &a), KVS_OK);
        for (i = 0; i < 3000; i++) {
            snprintf(k, sizeof k, "s%d", i);
            if (kvs_get(a, k, strlen(k), &v) != KVS_OK || v.len != 60 || ((const char *)v.data)[59] != 'Y')
                bad++;
        }
        tap_ok(bad == 0, "a spilled section that succeeds leaves every new value in the file");
        TAP_RC(kvs_check(a), KVS_OK);
        kvs_close(a);
    }

    /* ---- a damaged page */
    {
        kvs_page_info pi;
        uint32_t pgno = 0;
        off_t size0, size1;
        uint64_t h0, h1;
        int fd;
        char byte;
        TAP_RC(kvs_open(path, &o, &a), KVS_OK);
        TAP_RC(kvs_stats_get(a, &st), KVS_OK);
        for (pgno = 1; pgno < st.pages; pgno++)
            if (kvs_page_info_get(a, pgno, &pi) == KVS_OK && pi.type == KVS_PAGE_BUCKET && pi.nslots > 0)
                break;
        kvs_close(a);
        fd = open(path, O_RDWR);
        pread(fd, &byte, 1, (off_t)pgno * 4096 + 4000);
        byte ^= 0x40;
        pwrite(fd, &byte, 1, (off_t)pgno * 4096 + 4000);
        close(fd);
        h0 = tap_file_hash(path, &size0);
        TAP_RC(kvs_open(path, &o, &a), KVS_OK);
        TAP_RC(kvs_check(a), KVS_ECORRUPT);
        tap_ok(kvs_errpage(a) == pgno, "check names page %u: %s", (unsigned)pgno, kvs_errmsg(a));
        TAP_RC(kvs_page_info_get(a, pgno, &pi), KVS_OK);
        tap_ok(!pi.checksum_ok && pi.type == 0, "page info shows the bad checksum");
        for (i = 0; i < 400; i++) {
            snprintf(k, sizeof k, "p%d-%d", i % 4, i / 4);
            rc = kvs_put(a, k, strlen(k), "w", 1, 0);
            if (rc != KVS_OK)
                break;
        }
        tap_ok(rc == KVS_ECORRUPT, "writes are refused once corruption was seen (%s)", kvs_strerror(rc));
        TAP_RC(kvs_put(a, "zz", 2, "w", 1, 0), KVS_ECORRUPT);
        kvs_close(a);
        h1 = tap_file_hash(path, &size1);
        tap_ok(h0 == h1 && size0 == size1, "damaged file not modified");
    }
    /* ---- foreign, wrong version, truncated */
    {
        char p2[300];
        int fd;
        static char junk[8192];
        snprintf(p2, sizeof p2, "%s/foreign", dir);
        fd = open(p2, O_RDWR | O_CREAT, 0600);
        memset(junk, 'J', sizeof junk);
        write(fd, junk, sizeof junk);
        close(fd);
        TAP_RC(kvs_open(p2, &o, &a), KVS_ENOTKVS);
        tap_ok(strstr(kvs_open_errmsg(), "page 0") != NULL, "names page 0: %s", kvs_open_errmsg());
        unlink(p2);
        o.flags = KVS_CREATE;
        TAP_RC(kvs_open(p2, &o, &a), KVS_OK);
        for (i = 0; i < 3000; i++) {
            snprintf(k, sizeof k, "t%d", i);
            kvs_put(a, k, strlen(k), junk, 100, 0);
        }
        kvs_close(a);
        truncate(p2, 4096 * 10 + 100);
        o.flags = 0;
        TAP_RC(kvs_open(p2, &o, &a), KVS_ETRUNCATED);
        tap_ok(strstr(kvs_open_errmsg(), "page 10") != NULL, "names page 10: %s", kvs_open_errmsg());
        unlink(p2);
    }
    unlink(path);
    rmdir(dir);
    tap_diag("sections: %d checks", tap_n);
    return tap_done();
}
