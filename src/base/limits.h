/*
 * limits.h - every bound in racefree, with its unit in the name.
 * Every loop over outside data is bounded by one of these.
 */
#ifndef RF_LIMITS_H
#define RF_LIMITS_H

#define RF_BODY_BYTES_MAX (64 * 1024)          /* default request body limit */
#define RF_ID_CHARS_MAX 128                    /* ids, keys, user ids */
#define RF_IDEM_KEY_CHARS_MAX 255              /* Idempotency-Key header */
#define RF_SOURCE_CHARS_MAX 256                /* entitlement source */
#define RF_METADATA_BYTES_MAX (16 * 1024)      /* serialized metadata object */
#define RF_JSON_DEPTH_MAX 16                   /* nesting in metadata */
#define RF_LIST_LIMIT_DEFAULT 50
#define RF_LIST_LIMIT_MAX 500

/* A limit's value as a string literal, for limits pasted into SQL text (such
 * a limit must be a bare integer literal). */
#define RF_STR_(x) #x
#define RF_STR(x) RF_STR_(x)

#define RF_QUEUE_OPS_MAX 4096                  /* executor queue bound */
#define RF_BATCH_OPS_MAX 128                   /* SQLite group commit batch */
#define RF_SYNC_JOBS_MAX (4 * RF_BATCH_OPS_MAX) /* SQLite: answers waiting for one WAL fdatasync */
/* A PostgreSQL backend caches 64 subtransaction ids (one per savepoint that
 * wrote); a batch with more overflows to pg_subtrans, which slows every
 * other backend's snapshots. */
#define RF_PG_BATCH_OPS_MAX 64
#define RF_SYS_CURRENCIES_MAX 64               /* currencies remembered as having system accounts */
/* SQLite: the write connection's page cache (negative: KiB, SQLite's
 * convention), and the WAL length at which the checkpointer thread runs
 * (a longer WAL copies each hot page, rewritten by every batch, fewer times:
 * 4000 served 5% more credits/s than 1000, side by side). */
#define RF_SQLITE_WRITER_CACHE_KIB -65536
#define RF_SQLITE_CHECKPOINT_PAGES 4000
#define RF_SQLITE_TABLE_NAME_BYTES 64           /* a table whose RETURNING store/sqlite.c reads back */
/* glibc: free heap kept rather than trimmed, and the size from which an
 * allocation gets its own mapping (src/cli/main.c). */
#define RF_MALLOC_TRIM_BYTES (64 * 1024 * 1024)
#define RF_MALLOC_MMAP_BYTES (4 * 1024 * 1024)
#define RF_SQLITE_WAL_PAGES_MAX 16000          /* then the writer checkpoints the rest */
#define RF_WRITERS_DEFAULT 2                   /* PostgreSQL batch committers: 2 beat 4 on
                                                  2 cores for 1 process and for 3 (fuller
                                                  batches, fewer backends) */
#define RF_WRITERS_MAX 16
#define RF_PG_BATCH_LOCK_WAIT_MS 200           /* a row lock wait inside a batch (a bare literal: pasted into SQL) */
#define RF_RETRIES_MAX 8                       /* PostgreSQL 40001/40P01 retries */
#define RF_POOL_CONNS_DEFAULT 16               /* PostgreSQL pool */
#define RF_POOL_CONNS_MAX 128
#define RF_POOL_WAIT_MS 5000                   /* wait for a pooled connection */
#define RF_READERS_MAX 16                      /* SQLite reader connections */
#define RF_BUSY_TIMEOUT_MS 5000                /* SQLite busy_timeout */
#define RF_STMT_CACHE_MAX 128                  /* prepared statements per connection */
#define RF_SQL_PARAMS_MAX 64                   /* parameters in one statement */
#define RF_PG_QUEUED_MAX 32                    /* PostgreSQL: statements sent before their
                                                  results are read (store exec_later) */
#define RF_PG_TIMEOUT_MS 5000                  /* PostgreSQL: each wait (connect, statement,
                                                  COMMIT, pool), default of --pg-timeout-ms */
#define RF_PG_TIMEOUT_MS_MIN 100               /* smallest --pg-timeout-ms */
#define RF_PG_TIMEOUT_MS_MAX (10 * 60 * 1000)  /* largest --pg-timeout-ms */
#define RF_PG_SERVER_TIMEOUT_MARGIN_PERCENT 10 /* statement_timeout this much below the bound */
#define RF_PG_SCHEMA_CHARS_MAX 63              /* --schema: PostgreSQL's NAMEDATALEN - 1 */
#define RF_DB_URL_BYTES 4096                   /* a database URL (--db, $RACEFREE_DB, rf_open) */
#define RF_PG_SCRIPT_TIMEOUT_MS (30 * 60 * 1000) /* one migration script */
#define RF_PG_RESOLVE_POLL_MS 10               /* re-asking the status of a lost COMMIT */
#define RF_INFLIGHT_MAX RF_QUEUE_OPS_MAX       /* in-flight idempotency keys */
#define RF_SUBMIT_CALLS_MAX RF_QUEUE_OPS_MAX   /* rf_op_submit calls in flight per handle */
#define RF_KEY_CACHE_ENTRIES 256               /* API keys remembered by one process */
#define RF_KEY_CACHE_TTL_MS 1000               /* how long another process's revoke may go unseen */
#define RF_ROLES_COUNT 4                       /* enum rf_role's bits */
#define RF_RATE_QUOTA_MAX 1000000              /* requests in one rate limit's window */
#define RF_RATE_WINDOW_MS_MIN 1                /* a rate limit's shortest window */
#define RF_RATE_WINDOW_MS_MAX (24LL * 3600 * 1000) /* a rate limit's longest window: a day */
#define RF_RATE_SPEC_CHARS_MAX 32              /* "N/PERIOD" text of --rate-limit */
/* Unauthenticated requests (no key or a bad one) per client IP, per process */
#define RF_UNAUTH_RATE_DEFAULT "600/60s"       /* default --unauth-rate-limit */
#define RF_UNAUTH_IPS_MAX 4096                 /* client IPs whose unauthenticated rate is kept */
#define RF_IDEM_RETENTION_MS (24LL * 3600 * 1000)
#define RF_IDEM_PURGE_BATCH 1000
#define RF_REPLY_BYTES_MAX (256 * 1024)        /* stored idempotent response */
#define RF_TEST_DELAY_MS_MAX 10000
#define RF_TEST_IO_AFTER_BYTES_MAX (1024LL * 1024 * 1024) /* the I/O fault hook's budget */
#define RF_TEST_CRASH_EXIT_CODE 86             /* the crash-after-commit test hook's exit status */
#define RF_EXPIRE_BATCH_MAX 500                /* holds voided per expiry pass */
#define RF_MOVE_TRIES_MAX 2                    /* guarded balance UPDATEs per account move */
#define RF_DEFER_MOVES_MAX 512                 /* balance moves one transaction defers;
                                                  past it a move applies at once */
#define RF_CHECK_PAGE_ROWS 256                 /* approvals the ledger check holds at once */
#define RF_PAYOUT_MAX_ATTEMPTS_DEFAULT 5
#define RF_PAYOUT_MAX_ATTEMPTS_MAX 100
#define RF_CHECKOUT_ITEMS_MAX 50               /* items of one checkout */
#define RF_CHECKOUT_ITEMS_BYTES_MAX (16 * 1024) /* a checkout's items, compact JSON */
#define RF_CHECKOUT_TTL_MS_DEFAULT (24LL * 3600 * 1000) /* expires_at when not given */
#define RF_REASON_CHARS_MAX 512               /* failure reasons, credit reasons */

#define RF_HEADER_BYTES_MAX 8192                /* a request's header section */
#define RF_SHUTDOWN_DRAIN_MS 10000
#define RF_SHUTDOWN_LINGER_MS 500              /* open connections may finish sending a request after the listener closes */

/* HTTP layer (src/http) */
#define RF_BODY_BYTES_CONFIG_MAX (1024 * 1024) /* largest --body-max-bytes */
#define RF_BODY_DISCARD_BYTES_MAX (1024 * 1024) /* read and dropped past the limit, then close */
#define RF_HTTP_HEADERS_MAX 100                /* header fields in one request */
#define RF_HTTP_CHUNK_LINE_BYTES_MAX 1024      /* a chunk size line with its extensions */
#define RF_HTTP_READ_BYTES (16 * 1024)         /* per-connection input buffer */
#define RF_HTTP_CONNS_MAX 4096                 /* default --max-connections */
#define RF_HTTP_CONNS_CONFIG_MAX 16384         /* largest --max-connections */
#define RF_HTTP_CLIENT_CONNS_MAX 512           /* default --max-client-connections (per IP) */
#define RF_HTTP_WORKERS_DEFAULT 64             /* default --http-workers (handler threads) */
#define RF_HTTP_WORKERS_MAX 1024               /* largest --http-workers */
#define RF_HTTP_THREAD_STACK_BYTES (512 * 1024) /* a worker's stack */
#define RF_HTTP_HEADER_TIMEOUT_MS 10000        /* a request's whole header section */
#define RF_HTTP_BODY_TIMEOUT_MS 30000          /* a request's whole body */
#define RF_HTTP_IDLE_TIMEOUT_MS 30000          /* keep-alive between requests */
#define RF_HTTP_WRITE_TIMEOUT_MS 30000         /* writing one response */
#define RF_HTTP_TIMEOUT_CONFIG_MS_MAX 600000   /* largest --*-timeout-ms */
#define RF_HTTP_LINGER_MS 2000                 /* reading (and dropping) after a closing answer */
#define RF_HTTP_SWEEP_MS 100                   /* deadline check period */
#define RF_HTTP_ACCEPT_PAUSE_MS 100            /* accept() paused after EMFILE */
#define RF_HTTP_PATH_BYTES_MAX 1024            /* longer paths match no route */
#define RF_HTTP_PATH_PARAMS_MAX 4              /* {params} in one route pattern */
#define RF_HTTP_ROUTES_MAX 96                  /* rows in the route table */
#define RF_HTTP_FIELDS_MAX 16                  /* fields in one request body spec */
#define RF_OP_REQ_BYTES_MAX 512                /* an operation's request struct */
#define RF_OP_RES_BYTES_MAX 4096               /* an operation's result struct */
#define RF_HTTP_ALLOW_BYTES 64                 /* the Allow header of a 405 */
#define RF_REQUEST_ID_CHARS_MAX 64             /* X-Request-Id */
#define RF_PROBLEM_DETAIL_BYTES 256            /* problem+json detail text */
#define RF_QUERY_CHOICE_BYTES 64               /* a decoded ?status= style value */
#define RF_QUERY_FILTER_BYTES 256              /* a decoded list filter (?account=): an id fits */
#define RF_PROBLEM_PARAM_BYTES 64              /* problem+json param: a field or parameter name */
#define RF_ACCESS_LOG_BYTES_MAX 4096           /* one access log line */
#define RF_LOG_BUFFER_BYTES 65536              /* access log lines written in one write */
#define RF_LOG_LINE_BYTES_MAX 4096             /* one log line (rf_log_kv) */
#define RF_LOG_VALUE_CHARS_MAX 512             /* a logged string value; longer is cut */
#define RF_METRICS_BYTES_MAX (512 * 1024)      /* the /metrics page */

/* The race engine (src/cli/race.c) and the commands on it: probe, torture */
#define RF_RACE_COPIES_MAX 256                 /* connections released together in one race */
/* One request, head and body: the largest body a server may accept, and headers */
#define RF_RACE_REQUEST_BYTES_MAX (RF_BODY_BYTES_CONFIG_MAX + 16 * 1024)
#define RF_RACE_RESPONSE_BYTES_MAX (4 * 1024 * 1024) /* one response, head and body */
#define RF_RACE_TIMEOUT_MS_DEFAULT 10000       /* connect, send and each response, per race */
#define RF_RACE_TIMEOUT_MS_MAX 600000          /* largest --timeout-ms */
#define RF_RACE_URL_CHARS_MAX 1024             /* a --url */
#define RF_RACE_TARGETS_MAX 16                 /* comma-separated --url nodes */
#define RF_PROBE_ROUNDS_MAX 1000               /* probe --rounds */
#define RF_PROBE_FILE_BYTES_MAX RF_RACE_REQUEST_BYTES_MAX /* probe --request FILE */
#define RF_PROBE_CURL_ARGS_MAX 256             /* words of a curl command line */
#define RF_PROBE_HEADERS_MAX 64                /* headers of a probed request */
#define RF_PROBE_SHOW_BYTES 400                /* a body shown in probe's report */
#define RF_PROBE_CLASSES_MAX 32                /* answer groups probe keeps (the rest: "other") */
#define RF_PROBE_RACY_SHOWN 5                  /* rounds with a race sign named in the verdict */
#define RF_TORTURE_CLIENTS_MAX RF_RACE_COPIES_MAX /* torture --clients */
#define RF_TORTURE_ROUNDS_MAX 1000             /* torture --rounds */
#define RF_TORTURE_SCENARIOS_MAX 32            /* rows of torture's scenario table */
#define RF_TORTURE_KEY_BYTES 256               /* an API key's secret as torture keeps it */

/* CLI (src/cli) */
#define RF_MAINT_TICK_TEST_MS_MIN 10           /* shortest --maintenance-interval-ms */
#define RF_IDEM_RETENTION_HOURS_MAX (24 * 366) /* largest --idem-retention-hours */
#define RF_CLI_LIST_PAGES_MAX 100000           /* `keys list` pages */
#define RF_CLI_FLAGS_MAX 48                    /* flags of one command (its table) */
#define RF_CHECK_PROGRESS_ROWS 100000          /* `reconcile --progress`: a line per this many rows */
#define RF_RECONCILE_EXAMPLES_MAX 10           /* example rows a reconcile check reports */
#define RF_RECONCILE_CELL_CHARS_MAX 256        /* an example cell (an id, a key) */
#define RF_RECONCILE_PG_TIMEOUT_MS RF_PG_TIMEOUT_MS_MAX /* `reconcile`: default --pg-timeout-ms */

/* Webhooks */
#define RF_WEBHOOK_TOLERANCE_S_DEFAULT 300     /* |now - signature t| accepted, both ways */
#define RF_WEBHOOK_TOLERANCE_S_MAX 3600        /* largest --webhook-tolerance-s */
#define RF_WEBHOOK_OVERLAP_S_DEFAULT 86400     /* a rotated-out secret stays valid this long */
#define RF_WEBHOOK_OVERLAP_S_MAX (30 * 86400)  /* longest rotation overlap */
#define RF_WEBHOOK_SIG_HEADER_BYTES_MAX 2048   /* a signature header's value */
#define RF_WEBHOOK_SIGS_MAX 8                  /* v1 values tried from one header */
#define RF_WEBHOOK_SECRETS_MAX 2               /* accepted at once: primary and previous */
#define RF_WEBHOOK_MATCH_MAX 16                /* waiting events applied to one checkout at once */

/* Leases and payout batches */
#define RF_LEASE_TTL_MS_MAX_DEFAULT 60000      /* longest lease ttl_ms unless configured */
#define RF_LEASE_TTL_MS_LIMIT 86400000         /* largest --lease-max-ttl-ms (1 day) */
#define RF_PAYOUT_BATCH_CHUNK_WALLETS 100      /* wallets one batch chunk (transaction) scans */
#define RF_PAYOUT_BATCH_LEASE_TTL_MS 30000     /* the payouts lease a batch run holds, renewed per chunk */
#define RF_PAYOUT_BATCH_UNFINISHED_MAX 16      /* unfinished batches one run finishes first */
#define RF_TEST_BATCH_PAUSE_MS_MAX 60000       /* test hook: longest pause between chunks */
/* Scheduled runs (racefree serve --schedule, src/core/schedule.c) */
#define RF_SCHEDULES_MAX 16                    /* --schedule flags of one serve */
#define RF_SCHEDULE_SPEC_CHARS_MAX 64          /* one --schedule SPEC */
#define RF_SCHEDULE_NAME_CHARS_MAX 48          /* its name (before '@'): "payouts:USD:100" */
#define RF_SCHEDULE_INTERVAL_MS_MIN 200        /* shortest interval (tests run 10 in seconds) */
#define RF_SCHEDULE_INTERVAL_MS_MAX (7LL * 24 * 3600 * 1000) /* longest interval: a week */
#define RF_SCHEDULE_CURRENCIES_MAX 16          /* currencies one `payouts@` run pays out */
/* a run's batch ids, comma-separated: an id and its comma per currency */
#define RF_SCHEDULE_BATCH_IDS_BYTES (RF_SCHEDULE_CURRENCIES_MAX * (RF_ID_CHARS_MAX + 1))
#define RF_SCHEDULE_ATTEMPTS_MAX 5             /* tries of one slot's run before it is failed */
#define RF_SCHEDULE_LEASE_TRIES_MAX 4          /* lease_held answers retried within one tick */
#define RF_SCHEDULE_LEASE_BACKOFF_MS 100       /* first wait after lease_held; doubles */
#define RF_SCHEDULE_RESUME_AFTER_MS 10000      /* a running run untouched this long is resumed */
#define RF_SCHEDULE_RESUME_MAX 4               /* unfinished runs one tick resumes */
#define RF_SCHEDULE_ERROR_CHARS_MAX 256        /* a run's recorded error */

/* Job queue (core/jobs.c) and drop-in processing (core/dropin.c) */
#define RF_JOB_QUEUE_CHARS_MAX 64              /* a queue's name (an id) */
#define RF_JOB_KIND_CHARS_MAX 128              /* a job's kind (an id) */
#define RF_JOB_PAYLOAD_BYTES_MAX (16 * 1024)   /* a job's payload, a JSON object */
#define RF_JOB_RESULT_BYTES_MAX (16 * 1024)    /* what /complete records, a JSON object */
#define RF_JOB_ERROR_CHARS_MAX 1000            /* what /fail records */
#define RF_JOB_ATTEMPTS_DEFAULT 10             /* max_attempts when not given */
#define RF_JOB_ATTEMPTS_MAX 100                /* largest max_attempts */
#define RF_JOB_PRIORITY_MAX 100                /* priorities 0..100, lower is claimed first */
#define RF_JOB_LEASE_MS_MIN 100                /* shortest claim or heartbeat lease */
#define RF_JOB_LEASE_MS_MAX (3600 * 1000)      /* longest: one hour */
#define RF_JOB_LEASE_MS_DEFAULT 30000          /* a claim's lease when not given */
#define RF_JOB_CLAIM_MAX 100                   /* jobs one claim may take */
#define RF_JOB_RETRY_IN_MS_MAX (7 * 86400 * 1000LL) /* longest retry_in_ms a /fail may ask */
#define RF_JOB_RUN_AT_AHEAD_MS_MAX (366 * 86400 * 1000LL) /* run_at at most a year ahead */
#define RF_JOB_BACKOFF_BASE_MS 1000            /* first retry's backoff, doubled per attempt */
#define RF_JOB_BACKOFF_CAP_MS (3600 * 1000)    /* the backoff's cap before jitter */
#define RF_JOB_RESCUE_BATCH 500                /* expired leases made available per sweep batch */
#define RF_JOB_ENQUEUE_TRIES 4                 /* insert/read rounds when the existing job
                                                  of a unique_key finishes in between */
#define RF_JOBS_THEN_MAX 16                    /* jobs rf_op_run_then enqueues with one op */
#define RF_DROPIN_QUEUE "drop-in"              /* the queue drop-in processing uses */
#define RF_DROPIN_KIND "drop_in.process"       /* its jobs' kind */
#define RF_DROPIN_SIMILARITY_BP_MAX 10000      /* similarity_bp: 0..100.00 % in basis points */

/* Notifications */
#define RF_NOTIFICATION_KIND_CHARS_MAX 64      /* a notification's kind (an id: "order.shipped") */
#define RF_NOTIFICATION_TITLE_CHARS_MAX 200    /* its title, 1..200 characters */
#define RF_NOTIFICATION_BODY_CHARS_MAX 4000    /* its body, 0..4000 characters */
#define RF_NOTIFICATION_DATA_BYTES_MAX (8 * 1024) /* its data, a JSON object */
#define RF_NOTIFICATION_DEDUPE_CHARS_MAX 128   /* its dedupe_key (an id), unique per user */
/* Announcements (announcements.c) and their fan-out on the job queue. */
#define RF_ANNOUNCE_QUEUE "racefree.announcements" /* the fan-out's queue */
#define RF_ANNOUNCE_KIND "announcement.fanout"  /* its jobs' kind */
#define RF_ANNOUNCE_TITLE_CHARS_MAX 200        /* an announcement's title */
#define RF_ANNOUNCE_BODY_CHARS_MAX 4000        /* its body */
#define RF_ANNOUNCE_USER_IDS_MAX 5000          /* audience.user_ids: distinct users listed */
/* audience as JSON: 5,000 ids of RF_ID_CHARS_MAX characters, quoted, and the rest */
#define RF_ANNOUNCE_AUDIENCE_BYTES_MAX (RF_ANNOUNCE_USER_IDS_MAX * (RF_ID_CHARS_MAX + 3) + 256)
/* POST /v1/announcements' body limit: its audience, title and body (4 bytes a
 * character at most), and the other members; larger than RF_BODY_BYTES_MAX */
#define RF_ANNOUNCE_REQUEST_BYTES_MAX                                                 \
    (RF_ANNOUNCE_AUDIENCE_BYTES_MAX + 4 * (RF_ANNOUNCE_TITLE_CHARS_MAX +              \
                                           RF_ANNOUNCE_BODY_CHARS_MAX) + 4096)
#define RF_FANOUT_CHUNK_DEFAULT 500            /* recipients per fan-out transaction */
#define RF_FANOUT_CHUNK_MAX 5000               /* largest --fanout-chunk */
#define RF_FANOUT_POLL_MS 250                  /* the fan-out worker's wait when no job is ready */
#define RF_FANOUT_LEASE_MS 30000               /* its claims' lease (heartbeat every chunk) */
#define RF_FANOUT_ATTEMPTS 100                 /* a fan-out job's max_attempts (stops count) */
#define RF_FANOUT_FAIL_RETRY_MS 1000           /* a failed chunk's job is retried after this */
#define RF_TEST_FANOUT_FAIL_USERS_CHARS_MAX 1024 /* test hook: the ids whose delivery fails */
#define RF_TEST_FANOUT_PAUSE_MS_MAX 60000      /* test hook: longest pause after a chunk */

#endif
