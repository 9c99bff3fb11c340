/*
 * crashos.h - an I/O table (kvs_os) that simulates a crash at any write or
 * fsync: the process is killed there, or the machine loses power there.
 * Header-only, like tap.h; used by faults.c (every crash point of a commit)
 * and crash.c (a child killed while committing in a loop).
 *
 * Every call passes to POSIX.  Once armed (cr_arm), the table counts crash
 * points -- each pwrite, fsync, ftruncate, allocate, link, rename and
 * unlink -- and at
 * point number cr_crash_at it crashes: cr_crash() models what the disk holds
 * then, writes that state to the files, and _exit()s with CR_EXIT, so the
 * engine never learns of it.  The models:
 *   kill      the process dies: every call before the point took effect,
 *             the call at the point and nothing after it (the page cache
 *             survives a process).
 *   power     power loss: every write, ftruncate and directory change not
 *             followed by a successful fsync of its file (of its directory,
 *             for creating, linking, renaming, unlinking a name) is undone:
 *             each file gets back its bytes and its size as of its last
 *             fsync (or of cr_arm, which stands for a synced disk).
 *   torn-*    power loss during the write at the point, with every earlier
 *             write on disk: that write is torn.  torn-half: its first half
 *             (in 512-byte sectors) is new, the rest old; torn-sector: only
 *             its first sector is new; torn-tail: only its second half.
 *             Only a crash point that is a pwrite can be torn (for other
 *             points these models are the kill model).
 *   reorder   power loss with the disk's own order: each 4 KiB block of
 *             each write not yet covered by an fsync reached the disk or not
 *             (a coin per block, from cr_seed), ftruncates likewise; a
 *             random prefix of the unsynced directory changes (a journalled
 *             file system keeps its metadata in order) holds; the write at
 *             the point is torn-half.
 * The power models ask for a reboot (cr_boot, below): the boot id the
 * engine reads through this table changes, as a real power loss changes it.
 *
 * Directory changes are undone with hidden links kept under cr_hidden (a
 * directory on the same file system, outside the tested ones): an unlinked
 * or replaced name keeps its inode there until its directory is fsynced.
 * Writes are logged (old and new bytes) only while armed and cr_log is set;
 * the kill model needs no log.  A small file (64 KiB at most when synced)
 * also keeps its whole synced image, put back at a power loss: that undoes
 * changes made through a shared mapping too (msync + fsync make them
 * durable; the table sees only the fsync).
 *
 * What the table cannot see it cannot undo: the engine must make every
 * write, fsync (of files and of directories) and name change through the
 * kvs_os table it was given, and read the boot id through its open/pread;
 * mkdir is not in the table (a directory the engine makes counts as
 * durable), nor are writes through a mapping of a file above 64 KiB.
 */
#ifndef KVS_TEST_CRASHOS_H
#define KVS_TEST_CRASHOS_H

#include "kvs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

enum { CR_KILL, CR_POWER, CR_TORN_HALF, CR_TORN_SECTOR, CR_TORN_TAIL, CR_REORDER, CR_NMODELS };
static const char *cr_model_name[] = { "kill", "power", "torn-half", "torn-sector", "torn-tail",
                                       "reorder" };
#define CR_EXIT 77                       /* exit status of a simulated crash */
#define CR_IS_POWER(m) ((m) != CR_KILL)

/* ---- state ----------------------------------------------------------------- */
typedef struct cr_ent {                  /* one logged change of one file */
    int         trunc;                   /* 0 pwrite, 1 ftruncate */
    off_t       off, old_size;           /* ftruncate: off = the new length */
    size_t      n, oldn;                 /* new bytes, old bytes (at off) */
    unsigned char *nb, *ob;
} cr_ent;

typedef struct cr_file {                 /* an inode the table has seen opened */
    dev_t       dev;
    ino_t       ino;
    char        path[PATH_MAX];          /* where it was opened */
    int         isdir;
    cr_ent     *e;
    int         ne, cap;
    /* A small file (at most CR_IMG_MAX bytes at its last fsync, or new
     * since cr_arm) also has its whole synced image: a power loss puts that
     * back, which also undoes changes made through a shared mapping (the
     * journal's control file), which this table never sees. */
    unsigned char *img;
    off_t       img_size;
    int         has_img;
} cr_file;
#define CR_IMG_MAX  (64 * 1024)

typedef struct cr_dirop {                /* a name change not yet durable */
    int         kind;                    /* 'c' create, 'l' link, 'r' rename, 'u' unlink */
    char        a[PATH_MAX], b[PATH_MAX];/* the names (rename/link: a -> b) */
    char        hidden[PATH_MAX];        /* the name it removed or replaced, kept */
    char        dir[PATH_MAX];           /* the directory whose fsync makes it durable */
} cr_dirop;

#define CR_MAXFILES 256
#define CR_MAXFD    1024
#define CR_MAXDIROPS 4096
static cr_file  cr_files[CR_MAXFILES];
static int      cr_nfiles;
static int      cr_fdfile[CR_MAXFD];     /* fd -> index in cr_files + 1, 0 = unknown */
static cr_dirop cr_dirops[CR_MAXDIROPS];
static int      cr_ndirops, cr_hidden_n;
static char     cr_hidden[PATH_MAX];     /* set by the test: a directory for kept names */

static int      cr_armed, cr_log, cr_model;
static long     cr_points;               /* crash points met since cr_arm */
static long     cr_crash_at;             /* crash at this point; 0 = never */
static uint64_t cr_seed = 1;
/* Set by the test just before it calls the engine and cleared after: the
 * crash report (below) says which call the crash interrupted. */
static volatile int cr_phase;
/* Where the crash report goes (the test maps it shared before forking):
 * the point and the phase at the crash.  NULL: none. */
typedef struct cr_report { long point; int phase; int crashed; long points; long synced; } cr_report;
static cr_report *cr_rep;

/* The boot id the engine reads ("/proc/sys/kernel/random/boot_id") comes
 * from this table's file instead when cr_boot_file is set; cr_reboot()
 * writes a new one there. */
static char     cr_boot_file[PATH_MAX];
static const char cr_real_boot[] = "/proc/sys/kernel/random/boot_id";

static const kvs_os *cr_px(void) { return kvs_os_posix(); }

static uint64_t cr_rnd(void)
{
    uint64_t z = (cr_seed += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void cr_dirname(const char *p, char *out)
{
    const char *s = strrchr(p, '/');
    if (!s)
        strcpy(out, ".");
    else if (s == p)
        strcpy(out, "/");
    else {
        memcpy(out, p, (size_t)(s - p));
        out[s - p] = 0;
    }
}

static void cr_reboot(void)
{
    char id[64];
    int fd;
    if (!cr_boot_file[0])
        return;
    snprintf(id, sizeof id, "%08llx-0000-4000-8000-%012llx\n",
             (unsigned long long)(cr_rnd() & 0xffffffffu),
             (unsigned long long)(cr_rnd() & 0xffffffffffffULL));
    fd = open(cr_boot_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        if (write(fd, id, strlen(id)) < 0)
            perror("boot id");
        close(fd);
    }
}

/* ---- bookkeeping ------------------------------------------------------------ */
static cr_file *cr_file_of_fd(int fd)
{
    return fd >= 0 && fd < CR_MAXFD && cr_fdfile[fd] ? &cr_files[cr_fdfile[fd] - 1] : NULL;
}

static void cr_note_fd(int fd, const char *path)
{
    struct stat st;
    int i;
    if (fd < 0 || fd >= CR_MAXFD || fstat(fd, &st) != 0)
        return;
    for (i = 0; i < cr_nfiles; i++)
        if (cr_files[i].dev == st.st_dev && cr_files[i].ino == st.st_ino)
            break;
    if (i == cr_nfiles) {
        if (cr_nfiles == CR_MAXFILES) {
            /* an untracked file's writes could not be undone: say so */
            fprintf(stderr, "crashos: more than %d files (cr_reset between runs)\n", CR_MAXFILES);
            _exit(2);
        }
        memset(&cr_files[i], 0, sizeof cr_files[i]);
        cr_files[i].dev = st.st_dev;
        cr_files[i].ino = st.st_ino;
        cr_nfiles++;
    }
    /* an inode number is reused once its file is gone: by a directory too */
    cr_files[i].isdir = S_ISDIR(st.st_mode);
    snprintf(cr_files[i].path, sizeof cr_files[i].path, "%s", path);
    cr_fdfile[fd] = i + 1;
}

static void cr_file_clear(cr_file *f)
{
    int i;
    for (i = 0; i < f->ne; i++) {
        free(f->e[i].nb);
        free(f->e[i].ob);
    }
    f->ne = 0;
}

/* Takes the synced image of a small file (fd >= 0, or by its path). */
static void cr_take_image(cr_file *f, int fd)
{
    struct stat st;
    int own = fd < 0;
    free(f->img);
    f->img = NULL;
    f->has_img = 0;
    if (f->isdir || (own && (fd = open(f->path, O_RDONLY)) < 0))
        return;
    if (fstat(fd, &st) == 0 && st.st_dev == f->dev && st.st_ino == f->ino && st.st_size <= CR_IMG_MAX) {
        f->img_size = st.st_size;
        f->img = malloc(st.st_size ? (size_t)st.st_size : 1);
        if (f->img && pread(fd, f->img, (size_t)st.st_size, 0) == (ssize_t)st.st_size)
            f->has_img = 1;
    }
    if (own)
        close(fd);
}

static cr_ent *cr_push(cr_file *f)
{
    if (f->ne == f->cap) {
        int cap = f->cap ? f->cap * 2 : 64;
        cr_ent *e = realloc(f->e, (size_t)cap * sizeof *e);
        if (!e) {
            fprintf(stderr, "crashos: out of memory\n");
            _exit(2);
        }
        f->e = e;
        f->cap = cap;
    }
    memset(&f->e[f->ne], 0, sizeof f->e[0]);
    return &f->e[f->ne++];
}

/* The old bytes of [off, off+n) that exist, and the old size. */
static void cr_save_old(int fd, cr_ent *e, off_t off, size_t n)
{
    struct stat st;
    e->old_size = fstat(fd, &st) == 0 ? st.st_size : 0;
    e->oldn = off < e->old_size ? (size_t)((off_t)n < e->old_size - off ? (off_t)n : e->old_size - off) : 0;
    if (e->oldn) {
        e->ob = malloc(e->oldn);
        if (!e->ob || pread(fd, e->ob, e->oldn, off) != (ssize_t)e->oldn) {
            fprintf(stderr, "crashos: cannot save old bytes\n");
            _exit(2);
        }
    }
}

static void cr_dirop_add(int kind, const char *a, const char *b, const char *hidden)
{
    cr_dirop *d;
    if (cr_ndirops == CR_MAXDIROPS) {
        fprintf(stderr, "crashos: too many directory changes\n");
        _exit(2);
    }
    d = &cr_dirops[cr_ndirops++];
    d->kind = kind;
    snprintf(d->a, sizeof d->a, "%s", a);
    snprintf(d->b, sizeof d->b, "%s", b ? b : "");
    snprintf(d->hidden, sizeof d->hidden, "%s", hidden ? hidden : "");
    cr_dirname(b && kind != 'u' ? b : a, d->dir);
}

/* Keeps the inode at name under cr_hidden; returns 1 and its hidden name. */
static int cr_hide(const char *name, char *hidden)
{
    struct stat st;
    if (!cr_hidden[0] || lstat(name, &st) != 0)
        return 0;
    if (snprintf(hidden, PATH_MAX, "%s/kept.%d", cr_hidden, cr_hidden_n++) >= PATH_MAX) {
        hidden[0] = 0;
        return 0;
    }
    return link(name, hidden) == 0;
}

static void cr_dir_synced(const char *dir)
{
    int i, j = 0;
    for (i = 0; i < cr_ndirops; i++) {
        if (strcmp(cr_dirops[i].dir, dir) == 0) {
            if (cr_dirops[i].hidden[0])
                unlink(cr_dirops[i].hidden);
        } else
            cr_dirops[j++] = cr_dirops[i];
    }
    cr_ndirops = j;
}

/* ---- crashing --------------------------------------------------------------- */
static void cr_undo_dirop(const cr_dirop *d)
{
    switch (d->kind) {
    case 'c': case 'l':
        unlink(d->kind == 'c' ? d->a : d->b);
        break;
    case 'u':
        if (d->hidden[0])
            rename(d->hidden, d->a);
        break;
    case 'r':
        rename(d->b, d->a);
        if (d->hidden[0])
            rename(d->hidden, d->b);
        break;
    }
}

/* The path an inode has now (after the directory changes were undone), by
 * looking in the directories the table saw files opened in. */
static int cr_find_path(const cr_file *f, char *out)
{
    struct stat st;
    int i;
    if (stat(f->path, &st) == 0 && st.st_dev == f->dev && st.st_ino == f->ino) {
        strcpy(out, f->path);
        return 1;
    }
    for (i = 0; i < cr_nfiles; i++) {
        char d[PATH_MAX];
        DIR *dp;
        struct dirent *de;
        cr_dirname(cr_files[i].path, d);
        if (!(dp = opendir(d)))
            continue;
        while ((de = readdir(dp)) != NULL) {
            if (snprintf(out, PATH_MAX, "%s/%s", d, de->d_name) >= PATH_MAX)
                continue;
            if (stat(out, &st) == 0 && st.st_dev == f->dev && st.st_ino == f->ino) {
                closedir(dp);
                return 1;
            }
        }
        closedir(dp);
    }
    return 0;
}

static void cr_must(int ok)
{
    if (!ok) {
        fprintf(stderr, "crashos: cannot write the crashed state: %s\n", strerror(errno));
        _exit(2);
    }
}

/* Writes the disk state of the model into the files.  fd/buf/n/off: the
 * pwrite at the crash point (fd < 0: the point was another call). */
static void cr_crash(int fd, const void *buf, size_t n, off_t off)
{
    int i, k, torn = -1;
    size_t tk = 0, tfrom = 0;
    if (cr_rep) {
        cr_rep->crashed = 1;
        cr_rep->point = cr_points;
        cr_rep->phase = cr_phase;
    }
    switch (cr_model) {
    case CR_TORN_HALF: case CR_REORDER: torn = 0; break;
    case CR_TORN_SECTOR: torn = 1; break;
    case CR_TORN_TAIL: torn = 2; break;
    }
    if (cr_model == CR_POWER || cr_model == CR_REORDER) {
        /* directory changes: all undone, or (reorder) all but a prefix */
        int keep = cr_model == CR_REORDER ? (int)(cr_rnd() % (uint64_t)(cr_ndirops + 1)) : 0;
        for (i = cr_ndirops - 1; i >= keep; i--)
            cr_undo_dirop(&cr_dirops[i]);
        for (i = 0; i < keep; i++)
            if (cr_dirops[i].hidden[0])
                unlink(cr_dirops[i].hidden);
        /* contents: back to the last fsync, then (reorder) a random subset
         * of the logged changes again, in order */
        for (i = 0; i < cr_nfiles; i++) {
            cr_file *f = &cr_files[i];
            char p[PATH_MAX];
            int wfd;
            if ((!f->ne && !f->has_img) || f->isdir || !cr_find_path(f, p))
                continue;
            cr_must((wfd = open(p, O_RDWR)) >= 0);
            if (f->has_img) {
                /* a small file: its synced image, or (reorder) each 4 KiB
                 * block of it or of what it holds now, and either size */
                struct stat st;
                off_t o, end;
                cr_must(fstat(wfd, &st) == 0);
                end = st.st_size > f->img_size ? st.st_size : f->img_size;
                for (o = 0; o < end; o += 4096)
                    if (cr_model != CR_REORDER || (cr_rnd() & 1)) {
                        off_t len = o + 4096 <= f->img_size ? 4096 : f->img_size > o ? f->img_size - o : 0;
                        if (len)
                            cr_must(pwrite(wfd, f->img + o, (size_t)len, o) == (ssize_t)len);
                    }
                if (cr_model != CR_REORDER || (cr_rnd() & 1))
                    cr_must(ftruncate(wfd, f->img_size) == 0);
                close(wfd);
                continue;
            }
            for (k = f->ne - 1; k >= 0; k--) {
                cr_ent *e = &f->e[k];
                if (e->oldn)
                    cr_must(pwrite(wfd, e->ob, e->oldn, e->off) == (ssize_t)e->oldn);
                cr_must(ftruncate(wfd, e->old_size) == 0);
            }
            if (cr_model == CR_REORDER)
                for (k = 0; k < f->ne; k++) {
                    cr_ent *e = &f->e[k];
                    size_t at = 0;
                    if (e->trunc) {
                        if (cr_rnd() & 1)
                            cr_must(ftruncate(wfd, e->off) == 0);
                        continue;
                    }
                    while (at < e->n) {   /* 4 KiB blocks of the file */
                        off_t o = e->off + (off_t)at;
                        size_t len = (size_t)(4096 - (o & 4095));
                        if (len > e->n - at)
                            len = e->n - at;
                        if (cr_rnd() & 1)
                            cr_must(pwrite(wfd, e->nb + at, len, o) == (ssize_t)len);
                        at += len;
                    }
                }
            close(wfd);
        }
    }
    if (torn >= 0 && fd >= 0 && n > 0) {
        /* sector-sized pieces; a write of one sector or less tears at half */
        size_t half = n > 512 ? ((n / 2 + 511) & ~(size_t)511) : n / 2;
        if (half >= n)
            half = n / 2;
        if (torn == 0) { tfrom = 0; tk = half; }
        else if (torn == 1) { tfrom = 0; tk = n > 512 ? 512 : n / 2; }
        else { tfrom = half; tk = n - half; }
        if (tk)
            cr_must(pwrite(fd, (const char *)buf + tfrom, tk, off + (off_t)tfrom) == (ssize_t)tk);
    }
    _exit(CR_EXIT);
}

static void cr_point(const char *what, int fd, const void *buf, size_t n, off_t off)
{
    static int trace = -1;
    if (!cr_armed)
        return;
    cr_points++;
    if (trace < 0)
        trace = getenv("KVS_CRASHOS_TRACE") != NULL;
    if (trace) {                /* which call each point is, for debugging */
        cr_file *f = cr_file_of_fd(fd);
        fprintf(stderr, "crashos: point %ld: %s %s off %lld n %zu\n", cr_points, what,
                f ? f->path : "-", (long long)off, n);
    }
    if (cr_rep)
        cr_rep->points = cr_points;
    if (cr_crash_at && cr_points == cr_crash_at)
        cr_crash(fd, buf, n, off);
}

/* ---- the table ---------------------------------------------------------------- */
static int cr_open(const char *p, int fl, mode_t m)
{
    int fd, existed;
    struct stat st;
    if (cr_boot_file[0] && strcmp(p, cr_real_boot) == 0)
        p = cr_boot_file;
    existed = lstat(p, &st) == 0;
    fd = cr_px()->open(p, fl, m);
    if (fd >= 0) {
        cr_note_fd(fd, p);
        if (cr_armed && cr_log && !existed && (fl & O_CREAT)) {
            cr_file *f = cr_file_of_fd(fd);
            cr_dirop_add('c', p, NULL, NULL);
            if (f)
                cr_take_image(f, fd);   /* empty: nothing of it is synced */
        }
    }
    return fd;
}

static int cr_close(int fd)
{
    if (fd >= 0 && fd < CR_MAXFD)
        cr_fdfile[fd] = 0;
    return cr_px()->close(fd);
}

static ssize_t cr_pread(int fd, void *b, size_t n, off_t off) { return cr_px()->pread(fd, b, n, off); }

static ssize_t cr_pwrite(int fd, const void *b, size_t n, off_t off)
{
    cr_file *f = cr_file_of_fd(fd);
    cr_point("pwrite", fd, b, n, off);
    if (cr_armed && cr_log && f) {
        cr_ent *e = cr_push(f);
        e->off = off;
        e->n = n;
        cr_save_old(fd, e, off, n);
        if (n) {
            e->nb = malloc(n);
            cr_must(e->nb != NULL);
            memcpy(e->nb, b, n);
        }
    }
    {
        ssize_t r = cr_px()->pwrite(fd, b, n, off);
        if (cr_armed && cr_log && f && r >= 0 && (size_t)r < n)
            f->e[f->ne - 1].n = (size_t)r;   /* only what it wrote */
        return r;
    }
}

static int cr_fsync(int fd)
{
    cr_file *f = cr_file_of_fd(fd);
    int rc;
    cr_point("fsync", fd, NULL, 0, 0);
    /* what is durable is this table's model, not the disk's: no real
     * fsync (it only costs time; the machine does not lose power) */
    rc = fcntl(fd, F_GETFD) < 0 ? -1 : 0;
    if (rc == 0 && cr_armed && cr_rep)
        cr_rep->synced++;       /* successful fsyncs in the window */
    if (rc == 0 && f) {
        cr_file_clear(f);
        if (cr_armed && cr_log)
            cr_take_image(f, fd);
        if (f->isdir)
            cr_dir_synced(f->path);
    }
    return rc;
}

static int cr_ftruncate(int fd, off_t len)
{
    cr_file *f = cr_file_of_fd(fd);
    cr_point("ftruncate", fd, NULL, 0, len);
    if (cr_armed && cr_log && f) {
        cr_ent *e = cr_push(f);
        struct stat st;
        e->trunc = 1;
        e->off = len;
        if (fstat(fd, &st) == 0 && st.st_size > len)
            cr_save_old(fd, e, len, (size_t)(st.st_size - len));
        else
            e->old_size = fstat(fd, &st) == 0 ? st.st_size : 0;
    }
    return cr_px()->ftruncate(fd, len);
}

/* An allocation that grows the file is logged as a size change (the new
 * bytes read as zeros, as after an ftruncate): a power loss before the next
 * fsync undoes it, and the reorder model keeps it or not. */
static int cr_allocate(int fd, off_t off, off_t len)
{
    cr_file *f = cr_file_of_fd(fd);
    struct stat st;
    if (!cr_px()->allocate) {
        errno = EOPNOTSUPP;
        return -1;
    }
    cr_point("allocate", fd, NULL, 0, off + len);
    if (cr_armed && cr_log && f && fstat(fd, &st) == 0 && st.st_size < off + len) {
        cr_ent *e = cr_push(f);
        e->trunc = 1;
        e->off = off + len;
        e->old_size = st.st_size;
    }
    return cr_px()->allocate(fd, off, len);
}

static off_t cr_filesize(int fd) { return cr_px()->filesize(fd); }
static int cr_flock(int fd, int op) { return cr_px()->flock(fd, op); }

static int cr_link(const char *a, const char *b)
{
    int rc;
    cr_point("link", -1, NULL, 0, 0);
    rc = cr_px()->link(a, b);
    if (rc == 0 && cr_armed && cr_log)
        cr_dirop_add('l', a, b, NULL);
    return rc;
}

static int cr_unlink(const char *p)
{
    char hidden[PATH_MAX] = "";
    int rc;
    cr_point("unlink", -1, NULL, 0, 0);
    if (cr_armed && cr_log)
        cr_hide(p, hidden);
    rc = cr_px()->unlink(p);
    if (cr_armed && cr_log) {
        if (rc == 0)
            cr_dirop_add('u', p, NULL, hidden);
        else if (hidden[0])
            unlink(hidden);
    }
    return rc;
}

static int cr_fstat(int fd, struct stat *st) { return cr_px()->fstat(fd, st); }
static int cr_stat(const char *p, struct stat *st) { return cr_px()->stat(p, st); }

static int cr_rename(const char *a, const char *b)
{
    char hidden[PATH_MAX] = "";
    int rc;
    cr_point("rename", -1, NULL, 0, 0);
    if (cr_armed && cr_log)
        cr_hide(b, hidden);
    rc = cr_px()->rename(a, b);
    if (cr_armed && cr_log) {
        if (rc == 0)
            cr_dirop_add('r', a, b, hidden);
        else if (hidden[0])
            unlink(hidden);
    }
    return rc;
}

static const kvs_os crash_os = { cr_open, cr_close, cr_pread, cr_pwrite, cr_fsync, cr_ftruncate,
                                 cr_filesize, cr_flock, cr_link, cr_unlink, cr_fstat, cr_stat,
                                 cr_rename, cr_allocate };

/* Arms the table: from now on crash points count, and (log) the files'
 * changes are kept to be undone; the disk as it is now counts as synced. */
static void cr_arm(int model, long crash_at, int log)
{
    int i;
    for (i = 0; i < cr_nfiles; i++) {
        cr_file_clear(&cr_files[i]);
        if (log)
            cr_take_image(&cr_files[i], -1);
    }
    cr_ndirops = 0;
    cr_model = model;
    cr_crash_at = crash_at;
    cr_log = log;
    cr_points = 0;
    cr_armed = 1;
}

/* Forgets every file (call it between runs, with none of the table's
 * descriptors open: inode numbers are reused). */
static void cr_reset(void)
{
    int i;
    for (i = 0; i < cr_nfiles; i++) {
        cr_file_clear(&cr_files[i]);
        free(cr_files[i].e);
        free(cr_files[i].img);
    }
    memset(cr_files, 0, sizeof cr_files);
    memset(cr_fdfile, 0, sizeof cr_fdfile);
    cr_nfiles = 0;
    cr_ndirops = 0;
}

/* Starts the window of crash points again from here (the log goes on):
 * the next point is number 1, and the crash is at point crash_at. */
static void cr_window(long crash_at)
{
    cr_points = 0;
    cr_crash_at = crash_at;
}

/* Disarms: no more crash points; kept names are dropped. */
static void cr_disarm(void)
{
    int i;
    for (i = 0; i < cr_ndirops; i++)
        if (cr_dirops[i].hidden[0])
            unlink(cr_dirops[i].hidden);
    cr_ndirops = 0;
    for (i = 0; i < cr_nfiles; i++) {
        cr_file_clear(&cr_files[i]);
        free(cr_files[i].img);
        cr_files[i].img = NULL;
        cr_files[i].has_img = 0;
    }
    cr_armed = 0;
}

#endif
