/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * prsmfs [-o opts] MOUNTPOINT — the composition root. Everything that can be wrong with the
 * command line, the config file, the state and cache directories or the index is found
 * before the mount is made, so a bad start exits non-zero with one line and leaves no mount.
 *
 * Options: "-o key=value" for every config key (config_is_key), "-o config=FILE" (or
 * --config FILE, or $PRSMFS_CONFIG, or /etc/prsmfs/config.json when it exists), and the
 * usual libfuse options, which libfuse itself validates.
 */
#define LOG_MODULE "daemon"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "prsmfs/cache.h"
#include "prsmfs/config.h"
#include "prsmfs/fs.h"
#include "prsmfs/index.h"
#include "prsmfs/io.h"
#include "prsmfs/log.h"
#include "prsmfs/metrics.h"
#include "prsmfs/net.h"
#include "prsmfs/parse.h"
#include "prsmfs/store.h"
#include "prsmfs/upload.h"

#include "control.h"
#include "exporter.h"
#include "follow.h"
#include "fuse_timing.h"
#include "loading.h"
#include "logging.h"
#include "notify.h"
#include "prsm_cmds.h"
#include "reload.h"

#define DEFAULT_CONFIG_PATH "/etc/prsmfs/config.json"
#define MAX_OVERRIDES       64

struct override {
        char *key;
        char *value; /* may be NULL: "-o key" without a value */
};

struct cmdline {
        char *config_path;
        char *positional[2]; /* [source] mountpoint: mount.fuse3 passes a source first */
        size_t n_positional;
        struct override overrides[MAX_OVERRIDES];
        size_t n_overrides;
        bool too_many;
        bool oom;
        bool nonempty; /* -o nonempty: mount over a directory that has entries */
};

enum { KEY_CONFIG_LONG = 1, KEY_HELP_CONFIG };

static const struct fuse_opt opt_spec[] = {
        FUSE_OPT_KEY("--config=", KEY_CONFIG_LONG),
        FUSE_OPT_KEY("--config ", KEY_CONFIG_LONG),
        FUSE_OPT_END,
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
        struct cmdline *cl = data;
        const char *eq;
        char *k;

        (void)outargs;
        if (key == FUSE_OPT_KEY_NONOPT) {
                if (cl->n_positional >= 2)
                        return 1; /* let libfuse reject the extra argument */
                cl->positional[cl->n_positional] = strdup(arg);
                cl->oom |= !cl->positional[cl->n_positional++];
                return 0;
        }
        if (key == KEY_CONFIG_LONG) {
                const char *v = strncmp(arg, "--config=", 9) == 0 ? arg + 9 : arg + 8;

                free(cl->config_path);
                cl->config_path = strdup(v);
                cl->oom |= !cl->config_path;
                return 0;
        }
        if (key != FUSE_OPT_KEY_OPT)
                return 1;
        eq = strchr(arg, '=');
        k = eq ? strndup(arg, (size_t)(eq - arg)) : strdup(arg);
        if (!k) {
                cl->oom = true;
                return 0;
        }
        if (strcmp(k, "nonempty") == 0 && !eq) {
                free(k);
                cl->nonempty = true;
                return 0;
        }
        if (strcmp(k, "config") == 0) {
                free(k);
                free(cl->config_path);
                cl->config_path = eq ? strdup(eq + 1) : NULL;
                cl->oom |= eq && !cl->config_path;
                return 0;
        }
        if (!config_is_key(k)) {
                free(k);
                return 1; /* libfuse's, or unknown: fuse_session_new rejects those */
        }
        if (cl->n_overrides >= MAX_OVERRIDES) {
                free(k);
                cl->too_many = true;
                return 0;
        }
        cl->overrides[cl->n_overrides].key = k;
        cl->overrides[cl->n_overrides].value = eq ? strdup(eq + 1) : NULL;
        cl->oom |= eq && !cl->overrides[cl->n_overrides].value;
        cl->n_overrides++;
        return 0;
}

static void cmdline_done(struct cmdline *cl)
{
        free(cl->config_path);
        free(cl->positional[0]);
        free(cl->positional[1]);
        for (size_t i = 0; i < cl->n_overrides; i++) {
                free(cl->overrides[i].key);
                free(cl->overrides[i].value);
        }
}

static void usage(const char *prog)
{
        printf("usage: %s [options] MOUNTPOINT\n\n"
               "Mounts PRSM's IPFS content as a directory.\n\n"
               "prsmfs options:\n"
               "    --config=FILE          JSON config file (default $PRSMFS_CONFIG or %s)\n"
               "    -o config=FILE         same\n"
               "    -o KEY=VALUE           any config key (lists of nodes: URL|URL)\n"
               "    -o nonempty            mount over a directory that has entries\n\n",
               prog, DEFAULT_CONFIG_PATH);
        config_print_help(stdout);
        printf("\nlibfuse options:\n");
        fuse_cmdline_help();
        fuse_lowlevel_help();
}

static int make_dir(const char *path, const char *what)
{
        struct stat st;

        if (mkdir(path, 0700) < 0 && errno != EEXIST) {
                fprintf(stderr, "prsmfs: cannot create %s %s: %s\n", what, path, strerror(errno));
                return -errno;
        }
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
                fprintf(stderr, "prsmfs: %s %s is not a directory\n", what, path);
                return -ENOTDIR;
        }
        if (access(path, W_OK | X_OK) < 0) {
                fprintf(stderr, "prsmfs: %s %s is not writable: %s\n", what, path, strerror(errno));
                return -errno;
        }
        return 0;
}

/* The pid in the state_dir lock file: ours, also after fuse_daemonize's fork. */
static void write_pid(int fd)
{
        char s[32];
        int len = snprintf(s, sizeof(s), "%d\n", (int)getpid());
        int r = ftruncate(fd, 0) < 0 ? -errno : io_pwrite_all(fd, s, (size_t)len, 0);

        if (r < 0)
                log_warning("cannot write the pid into the state_dir lock: %s, ignoring",
                            strerror(-r));
}

/*
 * A state_dir (its index, upload jobs and control socket, and through the index's instance id
 * its staging files) belongs to one daemon: an exclusive flock on state_dir/lock, held by the
 * returned fd until the process ends (fuse_daemonize's child inherits it; O_CLOEXEC keeps it
 * from fusermount3). The file holds the owner's pid for a second daemon's message. It is
 * never removed: a third daemon could otherwise lock a new file while the second holds the
 * old one.
 */
static int lock_state_dir(const char *state_dir)
{
        char path[PATH_MAX], pid[24];
        ssize_t n;
        int fd, r;

        if ((size_t)snprintf(path, sizeof(path), "%s/lock", state_dir) >= sizeof(path)) {
                fprintf(stderr, "prsmfs: state_dir path too long\n");
                return -ENAMETOOLONG;
        }
        fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
                r = -errno;
                fprintf(stderr, "prsmfs: cannot open %s: %s\n", path, strerror(-r));
                return r;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
                write_pid(fd);
                return fd;
        }
        r = -errno;
        if (r == -EWOULDBLOCK) {
                /* written by the owner: a decimal pid, else it is not shown */
                n = pread(fd, pid, sizeof(pid) - 1, 0);
                pid[n > 0 ? n : 0] = '\0';
                pid[strcspn(pid, "\n")] = '\0';
                if (!pid[0] || pid[strspn(pid, "0123456789")])
                        (void)snprintf(pid, sizeof(pid), "unknown");
                fprintf(stderr, "prsmfs: state_dir %s is in use by another prsmfs (pid %s)\n",
                        state_dir, pid);
        } else
                fprintf(stderr, "prsmfs: cannot lock %s: %s\n", path, strerror(-r));
        close(fd);
        return r;
}

/* A daemon killed with SIGKILL leaves "Transport endpoint is not connected" behind. */
/* -ENOTEMPTY when the mount point has entries (they would be hidden while mounted, and a
 * mount over the wrong directory is a typo more often than a wish). */
static int check_empty(const char *mountpoint)
{
        struct dirent *de;
        DIR *d = opendir(mountpoint);
        int r = 0;

        if (!d)
                return -errno;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
                        r = -ENOTEMPTY;
                        break;
                }
        closedir(d);
        return r;
}

static int clear_stale_mount(const char *mountpoint)
{
        struct stat st;

        if (stat(mountpoint, &st) == 0)
                return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
        if (errno != ENOTCONN)
                return -errno;
        log_notice("%s is a stale mount of a dead daemon, detaching it", mountpoint);
        if (umount2(mountpoint, MNT_DETACH) < 0) {
                log_error_errno(-errno, "cannot detach the stale mount at %s", mountpoint);
                return -ENOTCONN;
        }
        return 0;
}

#define STORE_MEM_BYTES   (64ull << 20) /* blocks in memory: twice the largest readahead */
#define BDI_READ_AHEAD_KB 1024          /* kernel readahead of the mount: one 1 MiB block */
#define PIPE_MAX_SIZE     (2u << 20)    /* a spliced 1 MiB reply needs a pipe this big */
#define MMAP_THRESHOLD    (4u << 20)    /* 1 MiB reply buffers come from the heap */
#define TRIM_THRESHOLD    (8u << 20)    /* free memory the heap keeps at its top */

struct daemon {
        const struct cmdline *cl; /* for a reload: the config's path and the -o overrides */
        const char *mountpoint;
        struct index *idx;
        const struct config *cfg;
        struct config *running_cfg; /* cfg, for a reload's live keys (reload.c) */
        struct fs *fs;
        struct store *store;
        struct net_pool *net;
        struct cache *cache;
        struct upload *upload;
        struct daemon_prsm prsm;     /* identity, provenance records, access ledger */
        struct daemon_follow follow; /* a follow mount's resolver (follow.c) */
};

/*
 * ---- shutdown ----
 * SIGTERM and SIGINT stop the daemon promptly whatever is in flight (SIGHUP reloads the
 * config, below): the handler only writes the signal to a pipe; a thread reads it (a SIGHUP:
 * reloads and reads on), ends every network request and every
 * wait for an upload (their FUSE requests are answered at once), leaves the session and
 * wakes the loop's main thread (a signal that landed on another thread would not), so that
 * the workers finish and the mount goes within seconds, not after the network's timeout.
 */
static int stop_pipe[2] = { -1, -1 };

static void on_stop_signal(int sig)
{
        int saved = errno;
        char c = (char)sig;

        (void)!write(stop_pipe[1], &c, 1);
        errno = saved;
}

static void on_wake_signal(int sig)
{
        (void)sig; /* interrupts the loop's sem_wait, nothing else */
}

/*
 * ---- reload (SIGHUP, prsmctl reload) ----
 * The config is read again as at the start; daemon_reload_apply (reload.c) applies the live
 * keys and names the others. A file with an error changes nothing.
 */
static int read_config(const struct cmdline *cl, struct config *cfg, char *err, size_t err_size);

static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER; /* one reload at a time */

static int daemon_reload(struct daemon *d, json_t **ret)
{
        struct config next = { 0 };
        json_t *applied = json_array(), *remount = json_array();
        char err[512];
        int r;

        pthread_mutex_lock(&reload_lock);
        r = read_config(d->cl, &next, err, sizeof(err));
        if (r >= 0)
                r = daemon_reload_apply(&(struct reload_target){ .cfg = d->running_cfg,
                                                                 .net = d->net,
                                                                 .upload = d->upload },
                                        &next, applied, remount, err, sizeof(err));
        if (r < 0) {
                log_error("reload: %s; the running config stays", err);
                *ret = json_pack("{s:b, s:s+}", "ok", 0, "error", "reload: ", err);
                goto out;
        }
        *ret = json_pack("{s:O, s:O}", "applied", applied, "needs_restart", remount);
        r = *ret ? 0 : -ENOMEM;
out:
        pthread_mutex_unlock(&reload_lock);
        json_decref(applied);
        json_decref(remount);
        config_done(&next);
        return r;
}

struct stopper {
        struct daemon *d;
        struct fuse_session *se;
        pthread_t main_thread;
};

static void *stopper_thread(void *arg)
{
        struct stopper *s = arg;
        ssize_t n;
        char c;

        for (;;) {
                json_t *reply = NULL;

                do
                        n = read(stop_pipe[0], &c, 1);
                while (n < 0 && errno == EINTR);
                if (n != 1 || c != SIGHUP)
                        break;
                (void)daemon_reload(s->d, &reply); /* it logs what it did */
                json_decref(reply);
        }
        if (n != 1 || c == 0)
                return NULL; /* the daemon ends by itself */
        log_notice("stopping on signal %d: ending network requests and waits", (int)c);
        net_pool_shutdown(s->d->net);
        fs_stop_waits(s->d->fs);
        fuse_session_exit(s->se);
        (void)pthread_kill(s->main_thread, SIGUSR2);
        return NULL;
}

/* Installs the handlers; -errno. */
static int stop_signals_install(void)
{
        struct sigaction sa = { .sa_handler = on_stop_signal };
        struct sigaction wake = { .sa_handler = on_wake_signal };

        if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        /* the reader blocks; the handler's write never does (one byte per signal suffices) */
        if (fcntl(stop_pipe[0], F_SETFL, 0) < 0)
                return -errno;
        sigemptyset(&sa.sa_mask);
        sigemptyset(&wake.sa_mask);
        if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
            sigaction(SIGHUP, &sa, NULL) < 0 || sigaction(SIGUSR2, &wake, NULL) < 0)
                return -errno;
        return 0;
}

/* ---- the shutdown watch ---- */

/*
 * Finding 2 of docs/reliability.md: a daemon once had not exited 20 s after its last log line
 * of a clean unmount, and nothing said where it was. Each step of the shutdown is named here;
 * a thread says every SHUTDOWN_WATCH_S which one is taking long.
 */
#define SHUTDOWN_WATCH_S 5

struct shutdown_watch {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        const char *step; /* lock */
        bool is_done;     /* lock */
        pthread_t thread;
        bool started;
};

static void *shutdown_watch_thread(void *arg)
{
        struct shutdown_watch *w = arg;
        unsigned waited = 0;

        pthread_mutex_lock(&w->lock);
        while (!w->is_done) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += SHUTDOWN_WATCH_S;
                if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT && !w->is_done) {
                        waited += SHUTDOWN_WATCH_S;
                        log_warning("shutdown: still in %s after %u s", w->step, waited);
                }
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

static void shutdown_watch_start(struct shutdown_watch *w)
{
        *w = (struct shutdown_watch){ .step = "the start" };
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        w->started = pthread_create(&w->thread, NULL, shutdown_watch_thread, w) == 0;
}

static void shutdown_step(struct shutdown_watch *w, const char *step)
{
        pthread_mutex_lock(&w->lock);
        w->step = step;
        pthread_mutex_unlock(&w->lock);
}

static void shutdown_watch_stop(struct shutdown_watch *w)
{
        pthread_mutex_lock(&w->lock);
        w->is_done = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        if (w->started)
                pthread_join(w->thread, NULL);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
}

static int count_job(const struct index_job *j, void *userdata)
{
        (void)j;
        (*(unsigned *)userdata)++;
        return 0;
}

/* ---- the uploader as the fs sees it ---- */

struct upload_ctx {
        struct fs *fs;
        uint64_t ino;
};

static void upload_done(const struct upload_result *res, void *userdata)
{
        struct upload_ctx *c = userdata;

        fs_upload_done(c->fs, res->id, c->ino, res->error, &res->root, res->size, res->is_pinned);
        free(c);
}

static int up_submit(void *ud, uint64_t id, uint64_t ino, const char *path)
{
        struct daemon *d = ud;
        struct upload_ctx *c = malloc(sizeof(*c));
        int r;

        if (!c)
                return -ENOMEM;
        *c = (struct upload_ctx){ .fs = d->fs, .ino = ino };
        r = upload_submit(d->upload, id, path, upload_done, c);
        if (r < 0)
                free(c);
        return r == -EEXIST ? 0 : r; /* already queued: the same content */
}

static void up_cancel(void *ud, uint64_t id)
{
        struct daemon *d = ud;
        int r = upload_cancel(d->upload, id);

        if (r < 0 && r != -ENOENT) /* -ENOENT: finished already; its commit checks staleness */
                log_debug("cannot cancel upload %" PRIu64 ": %s", id, strerror(-r));
}

static void up_urge(void *ud, uint64_t id)
{
        struct daemon *d = ud;

        (void)upload_urge(d->upload, id);
}

static int up_early(void *ud, const char *path, uint64_t off, uint64_t len)
{
        struct daemon *d = ud;

        return upload_early(d->upload, path, off, len);
}

static int up_put_blocks(void *ud, fs_block_source_fn source, void *source_ud,
                         const struct cid *pin_root)
{
        struct daemon *d = ud;

        return upload_blocks(d->upload, source, source_ud, pin_root);
}

static int up_unpin(void *ud, const struct cid *root)
{
        struct daemon *d = ud;

        return upload_unpin(d->upload, root);
}

static int up_pin(void *ud, const struct cid *root)
{
        struct daemon *d = ud;

        return upload_pin(d->upload, root);
}

/* A request's CID argument: 0 with it parsed into ret, or -EINVAL with a reply that says
 * "not a CID: '...'" (NULL ret: only checked). */
static int cid_arg(const char *s, struct cid *ret, json_t **reply)
{
        struct cid tmp;
        char msg[256];

        if (s && cid_parse(s, strlen(s), ret ? ret : &tmp) >= 0)
                return 0;
        (void)snprintf(msg, sizeof(msg), "not a CID: '%.200s'", s ? s : "");
        *reply = json_pack("{s:b, s:s}", "ok", 0, "error", msg);
        return -EINVAL;
}

/* A follow mount refuses what would write: its tree is the published one (-EROFS). */
static int refuse_if_following(struct daemon *d, const char *what, json_t **reply)
{
        char msg[512];

        if (!d->cfg->follow)
                return 0;
        (void)snprintf(msg, sizeof(msg),
                       "this mount follows %.300s and is read-only: %s on the mount that writes "
                       "the tree",
                       d->cfg->follow, what);
        *reply = json_pack("{s:b, s:s}", "ok", 0, "error", msg);
        return -EROFS;
}

static int cmd_link(json_t *request, json_t **reply, void *userdata)
{
        struct daemon *d = userdata;
        const char *cid = json_string_value(json_object_get(request, "cid"));
        const char *path = json_string_value(json_object_get(request, "path"));
        enum fs_link_format format;
        char s[CID_MAX_STR], err[256];
        struct index_attr a;
        int r;

        if (!path)
                return -EINVAL;
        r = refuse_if_following(d, "link", reply);
        if (r < 0)
                return r;
        /* a placeholder is named as one (some parse as CIDs, some do not) */
        r = cid ? daemon_prsm_check_link(cid, reply) : 0;
        if (r < 0)
                return r;
        if (cid_arg(cid, NULL, reply) < 0)
                return -EINVAL;
        r = daemon_prsm_link_format(request, &format, reply);
        if (r >= 0)
                r = fs_link_path_as(d->fs, cid, path, format, 0, 0, err, sizeof(err), &a);
        if (r < 0 && err[0] && !*reply)
                *reply = json_pack("{s:b, s:s}", "ok", 0, "error", err);
        if (r < 0)
                return r;
        daemon_prsm_note_link(&d->prsm, request, path, &a.cid, a.size);
        *reply = json_pack("{s:I, s:s, s:s, s:I}", "ino", (json_int_t)a.ino, "cid",
                           cid_to_string(&a.cid, s), "type",
                           a.flags & INDEX_FLAG_PRSM ? "prsm"
                           : S_ISDIR(a.mode)         ? "directory"
                           : S_ISLNK(a.mode)         ? "symlink"
                                                     : "file",
                           "size", (json_int_t)a.size);
        return *reply ? 0 : -ENOMEM;
}

/* A path for a JSON string: itself when it is UTF-8, else with every byte >= 0x80 as \xNN
 * (names in the mount are bytes; jansson takes UTF-8 only). */
static json_t *json_path(const char *p)
{
        char *s = NULL;
        json_t *j = prsm_path_text(p, &s) >= 0 ? json_string(s) : NULL;

        free(s);
        return j;
}

/* An optional boolean of a request, else dflt; -EINVAL when it is not a boolean. */
static int request_bool(json_t *request, const char *key, bool dflt, bool *ret)
{
        json_t *v = json_object_get(request, key);

        if (v && !json_is_boolean(v))
                return -EINVAL;
        *ret = v ? json_is_true(v) : dflt;
        return 0;
}

/* prsmctl publish --ipns KEY: the published root under KEY's IPNS name, added to *reply
 * (which becomes an error naming the root on failure: the tree is published either way). */
static int publish_ipns(struct daemon *d, const char *key, bool create_key, const struct cid *root,
                        uint64_t deadline, json_t **reply)
{
        struct net_ipns_published pub;
        char err[1024], msg[1400], s[CID_MAX_STR], name[NET_IPNS_NAME_MAX + 8];
        int r;

        if (!d->net)
                return -EHOSTUNREACH;
        r = net_ipns_publish(d->net, key, root, create_key, deadline, &pub, err, sizeof(err));
        if (r < 0) {
                const char *why = r == -ENOKEY         ? "key not found on any node"
                                  : r == -EHOSTUNREACH ? "no node reachable"
                                  : r == -EINVAL       ? "bad key name"
                                  : r == -ETIMEDOUT    ? "timed out"
                                                       : "the node refused";

                (void)snprintf(msg, sizeof(msg),
                               "published %s, but not under IPNS key '%.255s': %s%s%s%s",
                               cid_to_string(root, s), key, why, err[0] ? " (" : "", err,
                               err[0] ? ")" : "");
                if (r == -ENOKEY)
                        (void)snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
                                       "; --create-key makes it on a node");
                log_warning("%s", msg);
                json_decref(*reply);
                *reply = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", msg, "cid", s);
                return r;
        }
        (void)snprintf(name, sizeof(name), "/ipns/%s", pub.name);
        if (json_object_set_new(*reply, "ipns_name", json_string(name)) < 0 ||
            json_object_set_new(*reply, "ipns_key", json_string(key)) < 0 ||
            json_object_set_new(*reply, "ipns_node", json_string(pub.node)) < 0 ||
            json_object_set_new(*reply, "key_created", json_boolean(pub.is_key_created)) < 0)
                return -ENOMEM;
        return 0;
}

static int cmd_publish(json_t *request, json_t **reply, void *userdata)
{
        struct daemon *d = userdata;
        const char *path = json_string_value(json_object_get(request, "path"));
        const char *ipns_key = json_string_value(json_object_get(request, "ipns_key"));
        uint64_t deadline = net_now_ns() + MAX(d->cfg->timeout_ms * 10, 600000ull) * 1000000ull;
        struct fs_publish_result res = { 0 };
        bool create_key;
        struct fs_publish_opts o;
        char s[CID_MAX_STR];
        json_t *list;
        int r;

        if (request_bool(request, "preserve_mode", d->cfg->publish_preserve_mode,
                         &o.preserve_mode) < 0 ||
            request_bool(request, "preserve_mtime", d->cfg->publish_preserve_mtime,
                         &o.preserve_mtime) < 0 ||
            request_bool(request, "include_private", false, &o.include_private) < 0 ||
            request_bool(request, "create_key", false, &create_key) < 0)
                return -EINVAL;
        r = refuse_if_following(d, "publish", reply);
        if (r < 0)
                return r;
        if (json_object_get(request, "ipns_key") && !ipns_key)
                return -EINVAL;
        r = fs_publish(d->fs, path ? path : "", &o, deadline, &res);
        if (r == -EACCES) {
                *reply = json_pack("{s:b, s:s}", "ok", 0, "error",
                                   "others may not read it in the mount (it is private, or a "
                                   "directory above it does not let them through): anyone with "
                                   "the CID could; --include-private publishes it anyway");
                return r;
        }
        if (r < 0)
                return r;
        daemon_prsm_note_publish(&d->prsm, path ? path : "", &res.root);
        /* prsmctl publish --no-wait does not read the reply: the log has the CID */
        log_notice("published '%s' as %s", path && *path ? path : "/", cid_to_string(&res.root, s));
        /* skipped: what was left out (each also named in the daemon's log) */
        list = json_array();
        for (size_t i = 0; list && i < res.n_skipped; i++) {
                const struct fs_publish_skipped *e = &res.skipped[i];
                char mode[8];

                (void)snprintf(mode, sizeof(mode), "%04o", e->mode & 07777);
                if (json_array_append_new(list,
                                          json_pack("{s:o, s:s, s:s}", "path", json_path(e->path),
                                                    "reason", e->reason, "mode", mode)) < 0) {
                        json_decref(list);
                        list = NULL;
                }
        }
        *reply = list ? json_pack("{s:s, s:o, s:I}", "cid", cid_to_string(&res.root, s), "skipped",
                                  list, "skipped_count", (json_int_t)res.n_skipped_total)
                      : NULL;
        r = *reply ? 0 : -ENOMEM;
        if (r >= 0 && ipns_key)
                r = publish_ipns(d, ipns_key, create_key, &res.root, deadline, reply);
        fs_publish_result_done(&res);
        return r;
}

/* prsmctl unpin CID: a published root is unpinned (in the background) unless files still
 * have it as their content. */
static int cmd_unpin(json_t *request, json_t **reply, void *userdata)
{
        struct daemon *d = userdata;
        const char *cid = json_string_value(json_object_get(request, "cid"));
        int r;

        if (cid_arg(cid, NULL, reply) < 0)
                return -EINVAL;
        r = fs_unpin(d->fs, cid);
        if (r == -ENOENT)
                *reply = json_pack("{s:b, s:s}", "ok", 0, "error",
                                   "not a root that prsmctl publish pinned");
        if (r < 0)
                return r;
        /* still_referenced: files have it as their content, it stays pinned while they do */
        *reply = json_pack("{s:s, s:b}", "cid", cid, "still_referenced", r == 0);
        return *reply ? 0 : -ENOMEM;
}

/* Roots prsmfs pinned and holds, unpins owed, and what the pin worker did. */
static json_t *pins_json(struct daemon *d, const struct fs_stats *fst)
{
        uint64_t held = 0, owed = 0;

        if (index_pin_counts(d->idx, &held, &owed) < 0)
                return json_null();
        return json_pack("{s:I, s:I, s:I, s:I, s:I}", "held", (json_int_t)held, "owed",
                         (json_int_t)owed, "unpins", (json_int_t)fst->unpins, "repins",
                         (json_int_t)fst->repins, "failures", (json_int_t)fst->pin_failures);
}

/* A node's state as prsmctl shows it. */
static const char *node_state_name(enum net_node_state st)
{
        static const char *const names[_NET_STATE_MAX] = {
                [NET_STATE_UP] = "up",
                [NET_STATE_SUSPECT] = "suspect",
                [NET_STATE_DOWN] = "down",
                [NET_STATE_DISABLED] = "disabled",
        };

        return (unsigned)st < _NET_STATE_MAX && names[st] ? names[st] : "unknown";
}

/* Counters of the store, the node pool and the cache, for prsmctl status (and tests). */
static json_t *stats_json(struct daemon *d)
{
        struct store_stats ss = { 0 };
        struct cache_stats cs = { 0 };
        struct fs_stats fst;
        struct net_stats *ns;
        json_t *nodes, *o;

        fs_get_stats(d->fs, &fst);
        if (d->store)
                store_get_stats(d->store, &ss);
        if (d->cache)
                cache_get_stats(d->cache, &cs);
        ns = calloc(1, sizeof(*ns));
        if (!ns)
                return NULL;
        if (d->net)
                net_pool_get_stats(d->net, ns);
        nodes = json_array();
        for (size_t i = 0; nodes && i < ns->n_nodes; i++)
                (void)json_array_append_new(
                        nodes, json_pack("{s:s, s:i, s:s, s:f, s:I, s:I, s:I}", "url",
                                         ns->nodes[i].url, "state", (int)ns->nodes[i].state,
                                         "state_name", node_state_name(ns->nodes[i].state),
                                         "latency_ms", ns->nodes[i].latency_ms, "requests",
                                         (json_int_t)ns->nodes[i].requests, "errors",
                                         (json_int_t)ns->nodes[i].errors, "bad_blocks",
                                         (json_int_t)ns->nodes[i].bad_blocks));
        o = json_pack("{s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, "
                      "s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I}, "
                      "s:{s:I, s:I, s:I}, s:o}",
                      "fs", "reads", (json_int_t)fst.reads, "read_bytes",
                      (json_int_t)fst.read_bytes, "read_errors", (json_int_t)fst.read_errors,
                      "readahead_blocks", (json_int_t)fst.readahead_blocks, "links",
                      (json_int_t)fst.links, "expansions", (json_int_t)fst.expansions,
                      "entries_skipped", (json_int_t)fst.entries_skipped, "layouts_loaded",
                      (json_int_t)fst.layouts_loaded, "layouts_stored",
                      (json_int_t)fst.layouts_stored, "read_wait_max_ms",
                      (json_int_t)(fst.read_wait_max_ns / 1000000), "store", "mem_hits",
                      (json_int_t)ss.mem_hits, "disk_hits", (json_int_t)ss.disk_hits, "fetches",
                      (json_int_t)ss.fetches, "fetch_errors", (json_int_t)ss.fetch_errors,
                      "prefetches", (json_int_t)ss.prefetches, "cache_put_errors",
                      (json_int_t)ss.cache_put_errors, "mem_bytes", (json_int_t)ss.mem_bytes,
                      "cache", "hits", (json_int_t)cs.hits, "misses", (json_int_t)cs.misses, "puts",
                      (json_int_t)cs.puts, "bytes", (json_int_t)cs.bytes, "net", "fetches",
                      (json_int_t)ns->fetches, "dedup_hits", (json_int_t)ns->dedup_hits, "failures",
                      (json_int_t)ns->failures, "nodes", nodes ? nodes : json_null());
        /* blocks and bytes sent: prsmctl publish shows them as its progress */
        if (o) {
                json_t *sent =
                        json_pack("{s:I, s:I, s:I}", "puts", (json_int_t)ns->puts, "put_bytes",
                                  (json_int_t)ns->put_bytes, "pins", (json_int_t)ns->pins);

                (void)json_object_update(json_object_get(o, "net"), sent); /* best effort */
                json_decref(sent);
        }
        if (o && json_object_set_new(o, "loading", loading_stats_json(&fst)) < 0) {
                json_decref(o);
                o = NULL;
        }
        if (o && (json_object_set_new(o, "pins", pins_json(d, &fst)) < 0 ||
                  json_object_set_new(o, "prsm", daemon_prsm_stats(&d->prsm)) < 0)) {
                json_decref(o);
                o = NULL;
        }
        free(ns);
        return o;
}

/* Uploads at a glance: queued, running (or waiting to retry), failed at least once, and
 * the jobs the index holds (those survive a restart). */
static json_t *uploads_summary_json(struct daemon *d)
{
        struct upload_job_info *jobs = NULL;
        uint64_t queued = 0, running = 0, failed = 0;
        unsigned in_index = 0;
        size_t n = 0;

        if (!d->upload || upload_list(d->upload, &jobs, &n) < 0)
                return json_null();
        for (size_t i = 0; i < n; i++) {
                queued += !jobs[i].is_running;
                running += jobs[i].is_running;
                failed += jobs[i].failed_attempts > 0;
        }
        free(jobs);
        if (index_jobs(d->idx, count_job, &in_index) < 0)
                return json_null();
        return json_pack("{s:I, s:I, s:I, s:I}", "pending", (json_int_t)queued, "running",
                         (json_int_t)running, "failed", (json_int_t)failed, "jobs",
                         (json_int_t)in_index);
}

static json_t *cache_json(struct daemon *d)
{
        struct cache_stats cs = { 0 };

        if (!d->cache)
                return json_null();
        cache_get_stats(d->cache, &cs);
        return json_pack("{s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "enabled",
                         d->cfg->content_cache_enabled, "dir", d->cfg->cache_dir, "bytes",
                         (json_int_t)cs.bytes, "max_bytes", (json_int_t)d->cfg->max_cache_size,
                         "hits", (json_int_t)cs.hits, "misses", (json_int_t)cs.misses, "evictions",
                         (json_int_t)cs.evictions, "put_errors", (json_int_t)cs.put_errors);
}

/* prsmctl uploads: every job not finished, with its last failure. */
static int cmd_uploads(json_t *request, json_t **reply, void *userdata)
{
        struct daemon *d = userdata;
        struct upload_job_info *jobs = NULL;
        json_t *list;
        size_t n = 0;
        int r;

        (void)request;
        if (!d->upload)
                return -EAGAIN;
        r = upload_list(d->upload, &jobs, &n);
        if (r < 0)
                return r;
        list = json_array();
        for (size_t i = n; list && i-- > 0;) { /* oldest first */
                const struct upload_job_info *j = &jobs[i];
                json_t *e = json_pack("{s:I, s:s, s:s, s:i, s:I, s:s}", "id", (json_int_t)j->id,
                                      "path", j->path, "state",
                                      !j->is_running           ? "pending"
                                      : j->failed_attempts > 0 ? "failed"
                                                               : "running",
                                      "failed_attempts", (int)j->failed_attempts, "retry_in_ms",
                                      (json_int_t)j->retry_in_ms, "node", j->node);

                if (e && j->last_error)
                        json_object_set_new(e, "reason", json_string(strerror(-j->last_error)));
                if (!e || json_array_append_new(list, e) < 0) {
                        json_decref(list);
                        list = NULL;
                }
        }
        free(jobs);
        *reply =
                list ? json_pack("{s:o, s:o*}", "uploads", list, "summary", uploads_summary_json(d))
                     : NULL;
        return *reply ? 0 : -ENOMEM;
}

/* prsmctl uploads retry [ID]: jobs waiting after a failure try again now. */
static int cmd_uploads_retry(json_t *request, json_t **reply, void *userdata)
{
        struct daemon *d = userdata;
        json_t *id = json_object_get(request, "id");
        int n;

        if (!d->upload)
                return -EAGAIN;
        if (id && !json_is_integer(id))
                return -EINVAL;
        n = upload_retry(d->upload, id ? (uint64_t)json_integer_value(id) : 0, !id);
        if (id && n == 0) {
                *reply = json_pack("{s:b, s:s}", "ok", 0, "error",
                                   "no upload with this id is waiting to retry");
                return -ENOENT;
        }
        *reply = json_pack("{s:i}", "retried", n);
        return *reply ? 0 : -ENOMEM;
}

/* prsmctl uploads forget ID: the job (ID is its generation) stops for good: cancelled in the
 * uploader, dropped from the index (so a restart does not resume it). The file keeps its
 * content on this machine; writing it again makes a new upload. */
static int cmd_uploads_forget(json_t *request, json_t **reply, void *userdata)
{
        struct daemon *d = userdata;
        json_t *id = json_object_get(request, "id");
        uint64_t gen;
        int r, c;

        if (!json_is_integer(id) || json_integer_value(id) <= 0)
                return -EINVAL;
        if (!d->upload)
                return -EAGAIN;
        gen = (uint64_t)json_integer_value(id);
        c = upload_cancel(d->upload, gen); /* -ENOENT: not queued (finished, or never was) */
        r = index_job_forget(d->idx, gen);
        if (r == -ENOENT && c < 0) {
                *reply = json_pack("{s:b, s:s}", "ok", 0, "error",
                                   "no upload with this id (finished already?)");
                return r;
        }
        if (r < 0 && r != -ENOENT)
                return r;
        log_notice("upload %" PRIu64 " forgotten (prsmctl uploads forget): its file keeps its "
                   "content here only until written again",
                   gen);
        *reply = json_pack("{s:I}", "forgotten", (json_int_t)gen);
        return *reply ? 0 : -ENOMEM;
}

/* prsmctl pin CID: pinned on `replicas` nodes and kept like a published root (until unpin). */
static int cmd_pin(json_t *request, json_t **reply, void *userdata)
{
        struct daemon *d = userdata;
        const char *s = json_string_value(json_object_get(request, "cid"));
        struct cid cid;
        int r;

        if (cid_arg(s, &cid, reply) < 0)
                return -EINVAL;
        if (!d->upload)
                return -EAGAIN;
        r = upload_pin(d->upload, &cid);
        if (r < 0)
                return r;
        r = index_pin_add(d->idx, &cid, INDEX_PIN_PUBLISHED);
        if (r < 0)
                return r;
        *reply = json_pack("{s:s, s:i}", "cid", s, "replicas", (int)d->cfg->replicas);
        return *reply ? 0 : -ENOMEM;
}

/* prsmctl cache gc [--target BYTES]: evicts least recently used blocks down to target (the
 * configured cap by default). */
static int cmd_cache_gc(json_t *request, json_t **reply, void *userdata)
{
        struct daemon *d = userdata;
        json_t *t = json_object_get(request, "target");
        struct cache_stats before, after;
        int64_t freed;

        if (t && (!json_is_integer(t) || json_integer_value(t) < 0))
                return -EINVAL;
        if (!d->cache)
                return -EAGAIN;
        cache_get_stats(d->cache, &before);
        freed = cache_evict(d->cache, t ? (uint64_t)json_integer_value(t) : d->cfg->max_cache_size);
        if (freed < 0)
                return (int)freed;
        cache_get_stats(d->cache, &after);
        *reply = json_pack("{s:I, s:I, s:I}", "freed_bytes", (json_int_t)freed, "evicted",
                           (json_int_t)(after.evictions - before.evictions), "bytes",
                           (json_int_t)after.bytes);
        return *reply ? 0 : -ENOMEM;
}

/* prsmctl cache verify: every cached block hashed again; bad ones dropped (cache_verify). */
static int cmd_cache_verify(json_t *request, json_t **reply, void *userdata)
{
        struct daemon *d = userdata;
        struct cache_verify_result res;
        int r;

        (void)request;
        if (!d->cache)
                return -EAGAIN;
        r = cache_verify(d->cache, &res);
        if (r < 0)
                return r;
        if (res.dropped)
                log_warning("cache verify: %" PRIu64 " corrupt block(s) dropped (%" PRIu64
                            " bytes); they are fetched again when read",
                            res.dropped, res.dropped_bytes);
        *reply =
                json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "checked", (json_int_t)res.checked,
                          "verified_bytes", (json_int_t)res.verified_bytes, "dropped",
                          (json_int_t)res.dropped, "dropped_bytes", (json_int_t)res.dropped_bytes,
                          "skipped", (json_int_t)res.skipped, "vanished", (json_int_t)res.vanished);
        return *reply ? 0 : -ENOMEM;
}

/* prsmctl fsck [--repair]: the index's integrity, and its staged content against the
 * staging directory (fs_fsck). */
static int cmd_fsck(json_t *request, json_t **reply, void *userdata)
{
        struct daemon *d = userdata;
        struct fs_fsck_result res;
        bool repair;
        int r;

        if (request_bool(request, "repair", false, &repair) < 0)
                return -EINVAL;
        r = fs_fsck(d->fs, repair, &res);
        if (r == -EROFS) {
                *reply = json_pack("{s:b, s:s}", "ok", 0, "error",
                                   "fsck: writes are off in this mount: no staging directory");
                return r;
        }
        if (r < 0)
                return r;
        *reply = json_pack("{s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}", "index",
                           index_check(d->idx) < 0 ? "corrupt" : "ok", "staging", "staged",
                           (json_int_t)res.staged, "open", (json_int_t)res.open, "young",
                           (json_int_t)res.young, "unknown", (json_int_t)res.unknown, "orphans",
                           (json_int_t)res.orphans, "orphan_bytes", (json_int_t)res.orphan_bytes,
                           "removed", (json_int_t)res.removed, "missing", (json_int_t)res.missing);
        return *reply ? 0 : -ENOMEM;
}

static int cmd_reload(json_t *request, json_t **reply, void *userdata)
{
        (void)request;
        return daemon_reload(userdata, reply);
}

static int cmd_status(json_t *request, json_t **reply, void *userdata)
{
        struct daemon *d = userdata;
        uint64_t inodes = 0, bytes = 0;
        int r;

        (void)request;
        r = index_totals(d->idx, &inodes, &bytes);
        if (r < 0)
                return r;
        *reply = json_pack("{s:s, s:s, s:s, s:I, s:I, s:o*, s:o*, s:o*}", "version", PRSMFS_VERSION,
                           "mountpoint", d->mountpoint, "state_dir", d->cfg->state_dir, "inodes",
                           (json_int_t)inodes, "bytes", (json_int_t)bytes, "stats", stats_json(d),
                           "uploads", uploads_summary_json(d), "cache", cache_json(d));
        /* a follow mount: the name, the root shown, the last resolve */
        if (*reply && d->cfg->follow &&
            json_object_set_new(*reply, "follow", daemon_follow_json(&d->follow, d->cfg)) < 0) {
                json_decref(*reply);
                *reply = NULL;
        }
        return *reply ? 0 : -ENOMEM;
}

static int cmd_check(json_t *request, json_t **reply, void *userdata)
{
        struct daemon *d = userdata;
        int r;

        (void)request;
        r = index_check(d->idx);
        *reply = json_pack("{s:s}", "index", r < 0 ? "corrupt" : "ok");
        return r;
}

static int cmd_prefetch(json_t *request, json_t **reply, void *userdata)
{
        return loading_cmd_prefetch(((struct daemon *)userdata)->fs, request, reply);
}

static int cmd_prefetch_status(json_t *request, json_t **reply, void *userdata)
{
        return loading_cmd_prefetch_status(((struct daemon *)userdata)->fs, request, reply);
}

static int cmd_provenance(json_t *request, json_t **reply, void *userdata)
{
        return daemon_prsm_cmd_provenance(request, reply, &((struct daemon *)userdata)->prsm);
}

static int cmd_provenance_export(json_t *request, json_t **reply, void *userdata)
{
        struct daemon *d = userdata;
        int r = daemon_prsm_cmd_export(request, reply, &d->prsm);

        if (r >= 0 && json_is_true(json_object_get(request, "publish")))
                r = daemon_prsm_publish_export(d->upload, *reply);
        return r;
}

static int cmd_rewards(json_t *request, json_t **reply, void *userdata)
{
        return daemon_prsm_cmd_rewards(request, reply, &((struct daemon *)userdata)->prsm);
}

static const struct control_command commands[] = {
        { "status", cmd_status },
        { "check", cmd_check },
        { "link", cmd_link },
        { "publish", cmd_publish },
        { "unpin", cmd_unpin }, /* a published root */
        { "uploads", cmd_uploads },
        { "uploads_retry", cmd_uploads_retry },
        { "pin", cmd_pin },
        { "cache_gc", cmd_cache_gc },
        { "reload", cmd_reload },
        { "cache_verify", cmd_cache_verify },
        { "fsck", cmd_fsck },
        { "uploads_forget", cmd_uploads_forget },
        { "prefetch", cmd_prefetch }, /* a warm-up job: started here, run by the fs */
        { "prefetch_status", cmd_prefetch_status },
        { "provenance", cmd_provenance }, /* docs/prsm.md */
        { "provenance_export", cmd_provenance_export },
        { "rewards", cmd_rewards },
};

/* Writes one number into a sysfs or procfs file; 0 or -errno. */
static int write_tunable(const char *path, unsigned value)
{
        FILE *f = fopen(path, "we");

        if (!f)
                return -errno;
        fprintf(f, "%u\n", value);
        return fclose(f) != 0 ? -errno : 0;
}

/*
 * The kernel reads ahead at most the bdi's read_ahead_kb (128 KiB) on a FUSE mount, whatever
 * max_readahead says (lessons.md); as root, raise it to one block, as gcsfuse does. The
 * mount's device number comes from /proc/self/mountinfo: stat() on the mount point would ask
 * this very daemon, which does not serve yet.
 */
static void raise_readahead(const char *mountpoint)
{
        char line[4096], dev[32] = "", path[128];
        FILE *f;
        int r;

        f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                char mp[PATH_MAX], d[32];

                /* "ID PARENT MAJ:MIN ROOT MOUNTPOINT ..." (spaces in paths are escaped) */
                if (sscanf(line, "%*s %*s %31s %*s %4095s", d, mp) == 2 &&
                    strcmp(mp, mountpoint) == 0 && strstr(line, " - fuse"))
                        (void)snprintf(dev, sizeof(dev), "%s", d); /* the last one is ours */
        }
        fclose(f);
        if (!dev[0])
                return;
        (void)snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
        r = write_tunable(path, BDI_READ_AHEAD_KB);
        if (r < 0)
                log_debug("cannot raise readahead (%s): %s", path, strerror(-r));
}

/*
 * Replies of cached blocks go to the kernel by splice (the block file's pages move through a
 * pipe, no copy in the daemon). libfuse sizes that pipe at the reply plus a few pages, which
 * for a 1 MiB read rounds up to 2 MiB, and fs.pipe-max-size is 1 MiB by default: without
 * CAP_SYS_RESOURCE the pipe cannot grow and every reply falls back to a copy through a fresh
 * buffer (measured: warm reads 3-5x slower, docs/bench-notes.md). As root, raise the limit to
 * 2 MiB; it is only ever raised, and it only lets pipes grow that large.
 */
static void raise_pipe_max(void)
{
        const char *path = "/proc/sys/fs/pipe-max-size";
        char text[32] = "";
        uint64_t cur = 0;
        FILE *f;
        int r;

        f = fopen(path, "re");
        if (!f)
                return;
        if (!fgets(text, sizeof(text), f))
                text[0] = '\0';
        fclose(f);
        text[strcspn(text, "\n")] = '\0';
        if (parse_u64(text, &cur) == 0 && cur >= PIPE_MAX_SIZE)
                return;
        r = write_tunable(path, PIPE_MAX_SIZE);
        if (r < 0)
                log_debug("cannot raise %s: %s; replies are copied, not spliced", path,
                          strerror(-r));
        else
                log_info("raised %s from %s to %u for spliced replies", path, text, PIPE_MAX_SIZE);
}

/* The node pool's settings from the config: RPC nodes first, then gateways. check: probe
 * every node once in the background and log what is wrong with each (the pool that serves). */
static int open_net(const struct config *cfg, bool check, struct net_pool **ret)
{
        struct net_node_config nodes[NET_MAX_NODES];
        struct net_pinning_service_config pins[CONFIG_MAX_NODES];
        struct net_config nc = {
                .nodes = nodes,
                .pinning_services = pins,
                .n_pinning_services = cfg->n_pinning_services,
                .parallel_uploads = cfg->parallel_uploads,
                .timeout_ms = cfg->timeout_ms,
                .stall_timeout_ms = cfg->stall_timeout_ms,
                .first_byte_timeout_ms = cfg->first_byte_timeout_ms,
                .is_checking_nodes = check,
                .retry_base_delay_ms = cfg->retry_base_delay_ms,
                .retry_max_delay_ms = cfg->retry_max_delay_ms,
                .retry_max_attempts = cfg->retry_max_attempts,
                .connection_pool_size = cfg->connection_pool_size,
                .ca_bundle = cfg->ca_bundle,
                .pin_requests_per_minute = cfg->requests_per_minute,
                .pin_burst_size = cfg->burst_size,
                .cluster_api = cfg->cluster_api,
                .cluster_auth_file = cfg->cluster_auth_file,
                .replication_min = cfg->replication_min,
                .replication_max = cfg->replication_max,
        };

        for (size_t i = 0; i < cfg->n_pinning_services; i++)
                pins[i] = (struct net_pinning_service_config){
                        .url = cfg->pinning_services[i].url,
                        .auth_file = cfg->pinning_services[i].auth_file,
                };
        nc.n_nodes = daemon_net_nodes(cfg, nodes);
        return net_pool_new(&nc, ret);
}

static int read_config(const struct cmdline *cl, struct config *cfg, char *err, size_t err_size);

/* control_group names a group of this host: checked before anything is mounted. */
static int check_control_group(const struct config *cfg)
{
        struct group gr, *g = NULL;
        char buf[4096];
        int r;

        if (!cfg->control_group)
                return 0;
        r = getgrnam_r(cfg->control_group, &gr, buf, sizeof(buf), &g);
        if (r == 0 && g)
                return 0;
        fprintf(stderr, "prsmfs: control_group '%s': %s\n", cfg->control_group,
                r ? strerror(r) : "no such group");
        return -EINVAL;
}

/* A metrics_listen that cannot be parsed stops the start (a typo would go unnoticed). */
static int check_metrics_listen(const char *listen)
{
        struct sockaddr_storage sa;
        unsigned len;
        bool loopback;

        if (!listen)
                return 0;
        if (metrics_parse_listen(listen, &sa, &len, &loopback) < 0) {
                fprintf(stderr,
                        "prsmfs: config: 'metrics_listen': '%s' is not HOST:PORT with a numeric "
                        "IPv4 host, [IPv6]:PORT or localhost:PORT (\"\" or off disables it)\n",
                        listen);
                return -EINVAL;
        }
        if (!loopback)
                log_notice("metrics_listen %s is not a loopback address: /metrics and /health "
                           "are open to the network",
                           listen);
        return 0;
}

static int load_config(struct cmdline *cl, struct config *cfg)
{
        char err[512];
        int r = read_config(cl, cfg, err, sizeof(err));

        if (r < 0) {
                fprintf(stderr, "prsmfs: %s\n", err);
                return r;
        }
        log_set_level((enum log_level)cfg->log_level);
        return check_metrics_listen(cfg->metrics_listen);
}

/* The config file (as at the start: --config, $PRSMFS_CONFIG or the default) with the -o
 * overrides over it, validated; the reason in err on failure. */
static int read_config(const struct cmdline *cl, struct config *cfg, char *err, size_t err_size)
{
        const char *path = cl->config_path;
        int r;

        r = config_init_defaults(cfg);
        if (r < 0) {
                (void)snprintf(err, err_size, "out of memory");
                return r;
        }
        if (!path)
                path = getenv("PRSMFS_CONFIG");
        if (!path && access(DEFAULT_CONFIG_PATH, F_OK) == 0)
                path = DEFAULT_CONFIG_PATH;
        if (path) {
                r = config_load_file(cfg, path, err, err_size);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < cl->n_overrides; i++) {
                r = config_set_option(cfg, cl->overrides[i].key, cl->overrides[i].value, err,
                                      err_size);
                if (r < 0)
                        return r;
        }
        return config_validate(cfg, err, err_size);
}

int main(int argc, char *argv[])
{
        struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
        struct fuse_cmdline_opts opts = { 0 };
        struct fuse_loop_config *loop = NULL;
        struct fuse_session *se = NULL;
        struct cmdline cl = { 0 };
        struct config cfg = { 0 };
        struct index *idx = NULL;
        struct fs *fs = NULL;
        struct control *control = NULL;
        struct daemon d = { 0 };
        char db_path[PATH_MAX], sock_path[PATH_MAX];
        struct cache *cache = NULL;
        struct net_pool *net = NULL;
        struct store *store = NULL;
        struct upload *upload = NULL;
        struct upload_config ucfg;
        struct exporter *exporter = NULL;
        struct notify *notify = NULL;
        bool mounted = false, stopper_started = false;
        struct shutdown_watch watch;
        struct stopper stopper;
        pthread_t stopper_tid;
        int lock_fd = -1, r, ret = 1;

        /* few malloc arenas: FUSE and fetch threads would each grow their own (RSS) */
        (void)mallopt(M_ARENA_MAX, 2);
        /* libfuse's copied replies (no splice) allocate and free ~1 MiB per read: above the
         * default threshold each one is a fresh mmap, zeroed and faulted in page by page */
        (void)mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        /* which also pins the trim threshold at its 128 KiB default: every free at the heap's
         * top gave the memory back, and the next allocation faulted it in again, page by page
         * (an rsync of small files: 140 page faults per file, 1 with this) */
        (void)mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        logging_route_fuse();
        if (fuse_opt_parse(&args, &cl, opt_spec, opt_proc) < 0 || cl.oom) {
                fprintf(stderr, "prsmfs: cannot parse the command line\n");
                goto out;
        }
        if (cl.too_many) {
                fprintf(stderr, "prsmfs: more than %d -o settings\n", MAX_OVERRIDES);
                goto out;
        }
        /* "prsmfs SOURCE MOUNTPOINT" (fstab via mount.fuse3) or "prsmfs MOUNTPOINT" */
        if (cl.n_positional > 0 && fuse_opt_add_arg(&args, cl.positional[cl.n_positional - 1]) < 0)
                goto out;
        if (fuse_parse_cmdline(&args, &opts) != 0)
                goto out; /* libfuse printed the reason */
        if (opts.show_help) {
                usage(argv[0]);
                ret = 0;
                goto out;
        }
        if (opts.show_version) {
                printf("prsmfs %s\n", PRSMFS_VERSION);
                printf("FUSE library version %s\n", fuse_pkgversion());
                fflush(stdout); /* fuse_lowlevel_version runs fusermount3, which prints too */
                fuse_lowlevel_version();
                ret = 0;
                goto out;
        }
        if (!opts.mountpoint) {
                fprintf(stderr, "prsmfs: no mount point given (see %s --help)\n", argv[0]);
                goto out;
        }
        if (load_config(&cl, &cfg) < 0 || check_control_group(&cfg) < 0)
                goto out;
        if (opts.debug)
                log_set_level(LOG_LEVEL_DEBUG);
        if (make_dir(cfg.state_dir, "state directory") < 0)
                goto out;
        /* before anything in state_dir, cache_dir or the mount point is touched */
        lock_fd = lock_state_dir(cfg.state_dir);
        if (lock_fd < 0 || make_dir(cfg.cache_dir, "cache directory") < 0)
                goto out;
        r = clear_stale_mount(opts.mountpoint);
        if (r >= 0 && !cl.nonempty)
                r = check_empty(opts.mountpoint);
        if (r == -ENOTEMPTY) {
                fprintf(stderr,
                        "prsmfs: mount point %s is not empty: its files would be hidden "
                        "(-o nonempty mounts over them)\n",
                        opts.mountpoint);
                goto out;
        }
        if (r < 0) {
                fprintf(stderr, "prsmfs: mount point %s: %s\n", opts.mountpoint, strerror(-r));
                goto out;
        }
        if ((size_t)snprintf(db_path, sizeof(db_path), "%s/index.sqlite", cfg.state_dir) >=
            sizeof(db_path)) {
                fprintf(stderr, "prsmfs: state_dir path too long\n");
                goto out;
        }
        r = index_open(db_path, &idx);
        if (r < 0) {
                fprintf(stderr, "prsmfs: cannot open the index %s: %s\n", db_path, strerror(-r));
                goto out;
        }
        /* the cache keeps its blocks in cache_dir/blocks; staging files sit beside, in
         * cache_dir/staging/<the index's instance id> (fs_new) */
        r = cache_open(cfg.cache_dir, cfg.max_cache_size, cfg.cache_ttl_ms,
                       cfg.content_cache_enabled, &cache);
        if (r < 0) {
                fprintf(stderr, "prsmfs: cannot open the cache in %s: %s\n", cfg.cache_dir,
                        strerror(-r));
                goto out;
        }
        /* The node pool and the store run threads, which fuse_daemonize's fork would not
         * keep: they are made after it. Made once here too, so that a bad node setting (an
         * unreadable auth file, a bad URL) is reported before anything is mounted. */
        r = open_net(&cfg, false, &net);
        if (r < 0) {
                fprintf(stderr, "prsmfs: cannot set up the node pool: %s\n", strerror(-r));
                goto out;
        }
        net_pool_free(net);
        net = NULL;
        r = fs_new(idx, &cfg, NULL, &fs);
        if (r < 0) {
                fprintf(stderr, "prsmfs: cannot prepare the tree: %s\n", strerror(-r));
                goto out;
        }
        if (cfg.follow) {
                /* read-only for the kernel too (EROFS, ST_RDONLY); the last root at once */
                fs_follow_enable(fs);
                r = fs_follow_restore(fs);
                if (r >= 0)
                        r = fuse_opt_add_arg(&args, "-oro") < 0 ? -ENOMEM : 0;
                if (r < 0) {
                        fprintf(stderr, "prsmfs: cannot set up following %s: %s\n", cfg.follow,
                                strerror(-r));
                        goto out;
                }
        }
        d.mountpoint = opts.mountpoint;
        d.idx = idx;
        d.cfg = &cfg;
        d.running_cfg = &cfg;
        d.fs = fs;
        d.store = store;
        d.net = net;
        d.cache = cache;
        d.cl = &cl;
        if ((size_t)snprintf(sock_path, sizeof(sock_path), "%s/control.sock", cfg.state_dir) >=
                    sizeof(sock_path) ||
            fs_set_control_path(fs, sock_path) < 0) {
                fprintf(stderr, "prsmfs: state_dir path too long\n");
                goto out;
        }
        /* Permission checks are the kernel's (POSIX semantics, and safe with allow_other). */
        if (fuse_opt_add_arg(&args, "-odefault_permissions,fsname=prsmfs,subtype=prsmfs") < 0)
                goto out;
        se = fuse_session_new(&args, fuse_timing_wrap(fs_lowlevel_ops()),
                              sizeof(struct fuse_lowlevel_ops), fs);
        if (!se)
                goto out; /* libfuse printed the reason (e.g. an unknown option) */
        /* once the command line is known good: a first start makes the key */
        if (daemon_prsm_init(&d.prsm, &cfg, idx) < 0)
                goto out; /* it printed why */
        if (fuse_set_signal_handlers(se) != 0)
                goto out;
        r = stop_signals_install(); /* over libfuse's for SIGTERM, SIGINT, SIGHUP (reload) */
        if (r < 0) {
                log_error_errno(r, "cannot install the signal handlers");
                goto out_signals;
        }
        fs_set_session(fs, se);
        if (fuse_session_mount(se, opts.mountpoint) != 0)
                goto out_signals;
        mounted = true;
        raise_readahead(opts.mountpoint);
        raise_pipe_max();
        log_info("mounted on %s", opts.mountpoint);
        if (fuse_daemonize(opts.foreground) != 0)
                goto out_signals;
        if (!opts.foreground) {
                write_pid(lock_fd);        /* the child's */
                log_open_syslog("prsmfs"); /* stderr is /dev/null now */
        }
        r = open_net(&cfg, true, &net);
        if (r >= 0)
                r = store_new(&(struct store_config){ .cache = cache,
                                                      .net = net,
                                                      .workers = cfg.parallel_downloads,
                                                      .mem_bytes = STORE_MEM_BYTES },
                              &store);
        if (r < 0) {
                log_error_errno(r, "cannot start the node pool");
                goto out_signals;
        }
        fs_set_store(fs, store);
        r = daemon_prsm_start(&d.prsm, fs);
        if (r < 0) {
                log_error_errno(r, "cannot start the provenance writer");
                goto out_signals;
        }
        r = cache_start_sweeper(cache);
        if (r < 0)
                log_error_errno(r, "cannot start the cache's TTL sweeper");
        d.net = net;
        d.store = store;
        r = upload_config_from(&cfg, net, cache, &ucfg);
        if (r >= 0)
                r = upload_new(&ucfg, &upload);
        if (r < 0) {
                log_error_errno(r, "cannot start the uploader");
                goto out_signals;
        }
        d.upload = upload;
        if (cfg.follow) {
                r = daemon_follow_start(&d.follow, &cfg, fs, net);
                if (r < 0) {
                        log_error_errno(r, "cannot start following %s", cfg.follow);
                        goto out_signals;
                }
        }
        r = fs_set_uploader(fs, &(struct fs_uploader){ .submit = up_submit,
                                                       .cancel = up_cancel,
                                                       .urge = up_urge,
                                                       .put_blocks = up_put_blocks,
                                                       .early = up_early,
                                                       .early_unit = upload_early_unit(upload),
                                                       .unpin = up_unpin,
                                                       .pin = up_pin,
                                                       .ud = &d });
        if (r < 0)
                log_error_errno(r, "cannot resume the uploads the index holds");
        /* after daemonize: the control thread must live in the process that serves */
        r = control_start(sock_path, cfg.control_group, commands, ELEMENTSOF(commands), &d,
                          &control);
        if (r < 0) {
                log_error_errno(r, "cannot listen on %s", sock_path);
                goto out_signals;
        }
        stopper = (struct stopper){ .d = &d, .se = se, .main_thread = pthread_self() };
        r = -pthread_create(&stopper_tid, NULL, stopper_thread, &stopper);
        if (r < 0) {
                log_error_errno(r, "cannot start the shutdown thread");
                goto out_signals;
        }
        stopper_started = true;
        exporter = exporter_start_or_warn(
                cfg.metrics_listen,
                &(struct exporter_sources){ .fs = fs,
                                            .store = store,
                                            .cache = cache,
                                            .net = net,
                                            .upload = upload,
                                            .idx = idx,
                                            .index_path = db_path,
                                            .prsm = d.prsm.prsm,
                                            .follow = cfg.follow ? &d.follow : NULL });
        notify = notify_ready(opts.mountpoint);
        if (opts.singlethread)
                r = fuse_session_loop(se);
        else {
                loop = fuse_loop_cfg_create();
                if (!loop)
                        goto out_signals;
                fuse_loop_cfg_set_clone_fd(loop, opts.clone_fd);
                fuse_loop_cfg_set_max_threads(loop, opts.max_threads ? opts.max_threads : 16);
                r = fuse_session_loop_mt(se, loop);
        }
        /* libfuse reports the signal that ended the loop: SIGTERM/SIGINT/SIGHUP are a clean
         * stop, like an unmount */
        ret = (r == 0 || r == SIGTERM || r == SIGINT || r == SIGHUP) ? 0 : 1;
        if (ret)
                log_error("session loop failed: %d", r);
out_signals:
        fuse_remove_signal_handlers(se);
out:
        shutdown_watch_start(&watch);
        if (mounted)
                notify_stopping(notify);
        shutdown_step(&watch, "exporter_stop");
        exporter_stop(exporter); /* before what it reads goes */
        if (stopper_started) {
                shutdown_step(&watch, "the stopper thread");
                (void)!write(stop_pipe[1], "", 1); /* ends it if no signal did */
                pthread_join(stopper_tid, NULL);
        }
        shutdown_step(&watch, "net_pool_shutdown");
        net_pool_shutdown(net); /* fetches, prefetches and uploads in flight end now */
        shutdown_step(&watch, "daemon_follow_stop");
        daemon_follow_stop(&d.follow); /* its resolve or switch in flight ended with them */
        shutdown_step(&watch, "control_stop");
        control_stop(control); /* after: a publish waiting on the network ends at once */
        shutdown_step(&watch, "fs_release_handles");
        fs_release_handles(fs); /* no request is served any more (reads waiting end first) */
        shutdown_step(&watch, "fs_pins_stop");
        fs_pins_stop(fs); /* unpins not sent stay owed in the index */
        shutdown_step(&watch, "upload_free");
        upload_free(upload); /* pending jobs stay in the index for the next start */
        if (upload) {
                unsigned pending = 0;

                if (index_jobs(idx, count_job, &pending) >= 0 && pending)
                        log_notice("%u upload(s) pending: they resume at the next start", pending);
        }
        shutdown_step(&watch, "daemon_prsm_stop");
        daemon_prsm_stop(&d.prsm); /* after the last read and commit: what is queued is written */
        shutdown_step(&watch, "store_free");
        store_free(store);
        shutdown_step(&watch, "the FUSE session's end");
        if (mounted)
                fuse_session_unmount(se);
        if (se)
                fuse_session_destroy(se);
        fuse_loop_cfg_destroy(loop);
        shutdown_step(&watch, "fs_free");
        fs_free(fs);
        shutdown_step(&watch, "net_pool_free");
        net_pool_free(net);
        shutdown_step(&watch, "cache_free");
        cache_free(cache);
        daemon_prsm_done(&d.prsm);
        shutdown_step(&watch, "index_free");
        index_free(idx);
        shutdown_watch_stop(&watch);
        if (lock_fd >= 0)
                close(lock_fd); /* the state_dir is free once the index is closed */
        config_done(&cfg);
        cmdline_done(&cl);
        free(opts.mountpoint);
        fuse_opt_free_args(&args);
        return ret;
}
