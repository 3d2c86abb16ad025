ALTER TABLE "order_events" DROP CONSTRAINT "order_events_once";--> statement-breakpoint
-- Rows written before messages were rendered at commit time hold no message: sent ones keep a stub, unsent ones are given up.
UPDATE "notifications" SET "body" = '{"kind":"legacy"}', "state" = CASE WHEN "state" = 'pending' THEN 'failed' ELSE "state" END, "last_error" = CASE WHEN "state" = 'pending' THEN 'written before outbox rendering' ELSE "last_error" END WHERE "body" IS NULL;--> statement-breakpoint
ALTER TABLE "notifications" ALTER COLUMN "body" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "carrier_attempts" ADD COLUMN "cancelled_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "notifications" ADD COLUMN "lease_until" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "order_events" ADD COLUMN "seq" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "shipments" ADD COLUMN "expected_by" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "shipments" ADD COLUMN "last_event_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "shipments_status_expected_idx" ON "shipments" USING btree ("status","expected_by");--> statement-breakpoint
CREATE INDEX "shipments_booked_idx" ON "shipments" USING btree ("booked_at","id");--> statement-breakpoint
ALTER TABLE "order_events" ADD CONSTRAINT "order_events_once" UNIQUE("order_id","attempt","status","seq");