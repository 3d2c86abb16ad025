-- A lane found empty starts its tags again only when none were handed out in the last p_grace_ms
-- (queues/fair.ts FAIR_TAKE): a job tagged just before the reset but added just after it would
-- otherwise keep its old, higher tag and be passed by its own shop's later jobs.
-- expires_at is set at every tag to now + p_ttl_ms, so a lane tagged within the grace expires
-- later than now + p_ttl_ms - p_grace_ms.
DROP FUNCTION coordination_fair_take(text, integer, boolean);
--> statement-breakpoint
CREATE FUNCTION coordination_fair_take(p_key text, p_tag integer, p_empty boolean, p_ttl_ms double precision, p_grace_ms double precision)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_frontier integer;
  v_expires timestamptz;
  v_expired boolean;
  v_reset boolean;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_key, 0));
  SELECT l.frontier, l.expires_at, l.expires_at <= clock_timestamp() INTO v_frontier, v_expires, v_expired
    FROM coordination_fair_lanes l WHERE l.key = p_key;
  v_reset := p_empty AND (v_expires IS NULL
    OR v_expires <= clock_timestamp() + (p_ttl_ms - p_grace_ms) * interval '1 millisecond');
  IF v_reset OR v_expired THEN
    DELETE FROM coordination_fair_tags t WHERE t.key = p_key;
    DELETE FROM coordination_fair_lanes l WHERE l.key = p_key;
    IF v_reset THEN RETURN; END IF;
    v_frontier := NULL;
  END IF;
  -- On a lane that had no tags this makes one holding only the frontier, with no expiry, as HSET does.
  IF p_tag > coalesce(v_frontier, 0) THEN
    INSERT INTO coordination_fair_lanes (key, frontier, expires_at) VALUES (p_key, p_tag, NULL)
      ON CONFLICT (key) DO UPDATE SET frontier = excluded.frontier;
  END IF;
END $$;
