-- pgbench script template: the transaction the ingest endpoint commits for one webhook.
--
-- bench/ingest.py fills in the {MARKED} parts and runs the result with
-- `pgbench -M prepared` (psycopg prepares statements it repeats); the generated script
-- is kept beside the run's logs. {RECORD_DELIVERY} is opspulse.ingest.endpoint's own
-- RECORD_DELIVERY statement (shared advisory lock, delivery insert, waiting-job check),
-- its %(name)s parameters replaced by pgbench variables, so this ceiling follows the
-- endpoint. As in IngestApp.record, it runs in a transaction and, when no drain job is
-- waiting, the job row goes in in a savepoint (opspulse.ingest.queue.defer_drain_job).
-- The job row is the INSERT that procrastinate_defer_jobs_v1 runs (triggers and NOTIFY
-- included), with ON CONFLICT DO NOTHING standing in for the AlreadyEnqueued the
-- endpoint catches: a unique violation would end a pgbench client. The store lookup is
-- left out: the endpoint caches it (INGEST_STORE_CACHE_SECONDS).
--
-- Variables (pgbench -D): run, nstores, lanes, lockbase, n=0 and, per platform, the topic,
-- kept headers (JSON) and body of a representative delivery.

\set idx random(0, :nstores - 1)
\set n :n + 1
\set sid {STORE_ID}
\set lane :sid % :lanes
\set lockkey :lockbase + :lane
BEGIN;
\if :idx % 2 = 0
{RECORD_DELIVERY_SHOPIFY} \gset r_
\else
{RECORD_DELIVERY_WOOCOMMERCE} \gset r_
\endif
\if :r_{JOB_WAITING}
\else
SAVEPOINT defer;
INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at)
    VALUES ('ingest', 'opspulse.ingest.drain_lane', 0, 'drain-lane-' || :lane, 'drain-lane-' || :lane,
            jsonb_build_object('lane', :lane::bigint), NULL)
    ON CONFLICT (queueing_lock) WHERE status = 'todo' DO NOTHING;
RELEASE SAVEPOINT defer;
\endif
COMMIT;
