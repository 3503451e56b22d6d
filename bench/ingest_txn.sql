-- pgbench script template: the statement the ingest endpoint runs for one webhook.
--
-- bench/ingest.py fills in the {MARKED} parts and runs the result with
-- `pgbench -M prepared` (psycopg prepares statements it repeats); the generated script
-- is kept beside the run's logs. {RECORD_DELIVERY} is opspulse.ingest.endpoint's own
-- RECORD_DELIVERY statement (shared advisory lock, delivery insert; then, if a drainer
-- owns the lane, a NOTIFY when it waits, else a look for a waiting drain job and, if
-- none, procrastinate_defer_jobs_v1), its %(name)s parameters
-- replaced by pgbench variables, so this ceiling follows the endpoint. It runs on its
-- own, in autocommit, as in IngestApp.record. The one difference: the defer function
-- is called through opspulse_bench_defer_jobs, which turns the unique violation of two
-- concurrent defers (the endpoint retries the statement) into NULL, since an error
-- would end a pgbench client. The store lookup is left out: the endpoint caches it
-- (INGEST_STORE_CACHE_SECONDS).
--
-- Variables (pgbench -D): run, nstores, lanes, lockbase, drainerbase, idlebase, n=0 and, per platform, the topic,
-- kept headers (JSON) and body of a representative delivery.

\set idx random(0, :nstores - 1)
\set n :n + 1
\set sid {STORE_ID}
\set lane :sid % :lanes
\set lockkey :lockbase + :lane
\set drainerkey :drainerbase + :lane
\set idlekey :idlebase + :lane
\if :idx % 2 = 0
{RECORD_DELIVERY_SHOPIFY};
\else
{RECORD_DELIVERY_WOOCOMMERCE};
\endif
