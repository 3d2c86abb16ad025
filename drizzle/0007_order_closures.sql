CREATE TABLE "order_closures" (
	"order_id" uuid PRIMARY KEY NOT NULL,
	"attempt" integer NOT NULL,
	"status" text NOT NULL,
	"failure_reason" text,
	"closed_at" timestamp with time zone NOT NULL,
	"on_time" boolean NOT NULL,
	"priority" text NOT NULL,
	"region" text NOT NULL,
	"processing_ms" double precision,
	"carriers" text[] NOT NULL,
	"warehouses" text[] NOT NULL
);
--> statement-breakpoint
DROP INDEX "order_events_closed_idx";--> statement-breakpoint
ALTER TABLE "order_closures" ADD CONSTRAINT "order_closures_order_id_orders_id_fk" FOREIGN KEY ("order_id") REFERENCES "public"."orders"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "order_closures_closed_idx" ON "order_closures" USING btree ("closed_at");--> statement-breakpoint
-- Backfill: the closures of the orders already closed, as db/kpis.ts counted them until now (the
-- closing event of the order's current attempt; that attempt's parcels and received/dispatched events).
INSERT INTO "order_closures" ("order_id", "attempt", "status", "failure_reason", "closed_at", "on_time", "priority", "region", "processing_ms", "carriers", "warehouses")
SELECT o.id, o.attempt, o.status, o.failure_reason, e.recorded_at,
       coalesce(o.status = 'delivered' AND o.delivered_at <= o.initial_promised_by, false),
       o.priority, o.region,
       (SELECT (extract(epoch FROM d.at - r.at) * 1000)::float8
          FROM order_events r
          JOIN order_events d ON d.order_id = r.order_id AND d.attempt = r.attempt AND d.status = 'dispatched' AND d.seq = 1
         WHERE r.order_id = o.id AND r.attempt = o.attempt AND r.status = 'received' AND r.seq = 1),
       ARRAY(SELECT DISTINCT s.carrier_id FROM shipments s
              WHERE s.order_id = o.id AND s.attempt = o.attempt AND s.carrier_id IS NOT NULL ORDER BY 1),
       ARRAY(SELECT DISTINCT s.warehouse_id FROM shipments s
              WHERE s.order_id = o.id AND s.attempt = o.attempt ORDER BY 1)
  FROM orders o
  JOIN order_events e ON e.order_id = o.id AND e.attempt = o.attempt AND e.status = o.status
 WHERE o.status IN ('delivered', 'failed');
