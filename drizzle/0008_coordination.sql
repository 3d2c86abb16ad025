CREATE TABLE "coordination_fair_lanes" (
	"key" text PRIMARY KEY NOT NULL,
	"frontier" integer DEFAULT 0 NOT NULL,
	"expires_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "coordination_fair_tags" (
	"key" text NOT NULL,
	"shop" text NOT NULL,
	"tag" integer NOT NULL,
	CONSTRAINT "coordination_fair_tags_key_shop_pk" PRIMARY KEY("key","shop")
);
--> statement-breakpoint
CREATE TABLE "coordination_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"key" text NOT NULL,
	"at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "coordination_members" (
	"key" text NOT NULL,
	"member" text NOT NULL,
	CONSTRAINT "coordination_members_key_member_pk" PRIMARY KEY("key","member")
);
--> statement-breakpoint
CREATE TABLE "coordination_values" (
	"key" text PRIMARY KEY NOT NULL,
	"value" text NOT NULL,
	"expires_at" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "coordination_log_key_at_idx" ON "coordination_log" USING btree ("key","at");--> statement-breakpoint
-- The functions of db/coordination.ts: each one step under a transaction-scoped advisory lock on
-- its key, so concurrent calls for one key take turns, as Redis runs one script at a time.
-- A sliding log (integrations/sliding-log.ts SLIDING_LOG): total is max + 1 when refused.
CREATE FUNCTION coordination_slide(p_key text, p_window double precision, p_max integer, p_always boolean,
                                   OUT total integer, OUT reset_ms double precision)
LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint;
  v_oldest bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_key, 0));
  -- Read after the lock: each caller's time is later than the one before it.
  v_now := floor(extract(epoch FROM clock_timestamp()) * 1000);
  DELETE FROM coordination_log l WHERE l.key = p_key AND l.at <= v_now - p_window;
  SELECT count(*), min(l.at) INTO total, v_oldest FROM coordination_log l WHERE l.key = p_key;
  IF total < p_max OR p_always THEN
    INSERT INTO coordination_log (key, at) VALUES (p_key, v_now);
    total := total + 1;
    v_oldest := coalesce(v_oldest, v_now);
  ELSE
    total := p_max + 1;
  END IF;
  reset_ms := coalesce(v_oldest + p_window - v_now, p_window);
END $$;
--> statement-breakpoint
-- A lane's tags for these shops, in order (queues/fair.ts FAIR_TAG); the lane lives p_ttl_ms longer.
CREATE FUNCTION coordination_fair_tag(p_key text, p_shops jsonb, p_max integer, p_ttl_ms double precision)
RETURNS integer[]
LANGUAGE plpgsql AS $$
DECLARE
  v_frontier integer;
  v_expired boolean;
  v_shop text;
  v_last integer;
  v_tag integer;
  v_tags integer[] := '{}';
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_key, 0));
  SELECT l.frontier, l.expires_at <= clock_timestamp() INTO v_frontier, v_expired
    FROM coordination_fair_lanes l WHERE l.key = p_key;
  IF NOT FOUND THEN
    v_frontier := 0;
  ELSIF v_expired THEN
    DELETE FROM coordination_fair_tags t WHERE t.key = p_key;
    v_frontier := 0;
  END IF;
  FOR v_shop IN SELECT e.shop FROM jsonb_array_elements_text(p_shops) WITH ORDINALITY AS e(shop, n) ORDER BY e.n LOOP
    SELECT t.tag INTO v_last FROM coordination_fair_tags t WHERE t.key = p_key AND t.shop = v_shop;
    v_tag := least(greatest(coalesce(v_last, 0), v_frontier) + 1, p_max);
    INSERT INTO coordination_fair_tags (key, shop, tag) VALUES (p_key, v_shop, v_tag)
      ON CONFLICT (key, shop) DO UPDATE SET tag = excluded.tag;
    v_tags := v_tags || v_tag;
  END LOOP;
  INSERT INTO coordination_fair_lanes (key, frontier, expires_at)
    VALUES (p_key, v_frontier, clock_timestamp() + p_ttl_ms * interval '1 millisecond')
    ON CONFLICT (key) DO UPDATE SET frontier = excluded.frontier, expires_at = excluded.expires_at;
  RETURN v_tags;
END $$;
--> statement-breakpoint
-- A worker took a job of the lane tagged p_tag (queues/fair.ts FAIR_TAKE): the lane starts again
-- when it is empty, else its frontier rises to p_tag.
CREATE FUNCTION coordination_fair_take(p_key text, p_tag integer, p_empty boolean)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_frontier integer;
  v_expired boolean;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_key, 0));
  SELECT l.frontier, l.expires_at <= clock_timestamp() INTO v_frontier, v_expired
    FROM coordination_fair_lanes l WHERE l.key = p_key;
  IF p_empty OR v_expired THEN
    DELETE FROM coordination_fair_tags t WHERE t.key = p_key;
    DELETE FROM coordination_fair_lanes l WHERE l.key = p_key;
    IF p_empty THEN RETURN; END IF;
    v_frontier := NULL;
  END IF;
  -- On a lane that had no tags this makes one holding only the frontier, with no expiry, as HSET does.
  IF p_tag > coalesce(v_frontier, 0) THEN
    INSERT INTO coordination_fair_lanes (key, frontier, expires_at) VALUES (p_key, p_tag, NULL)
      ON CONFLICT (key) DO UPDATE SET frontier = excluded.frontier;
  END IF;
END $$;
