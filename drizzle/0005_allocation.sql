CREATE TABLE "restocks" (
	"id" uuid PRIMARY KEY NOT NULL,
	"warehouse_id" text NOT NULL,
	"sku" text NOT NULL,
	"quantity" integer NOT NULL,
	"eta" timestamp with time zone NOT NULL,
	"received_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "stock_alerts" (
	"warehouse_id" text NOT NULL,
	"sku" text NOT NULL,
	"since" timestamp with time zone NOT NULL,
	CONSTRAINT "stock_alerts_warehouse_id_sku_pk" PRIMARY KEY("warehouse_id","sku")
);
--> statement-breakpoint
CREATE TABLE "suppliers" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"available" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "allocations" ADD COLUMN "created_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "restocks" ADD CONSTRAINT "restocks_warehouse_id_warehouses_id_fk" FOREIGN KEY ("warehouse_id") REFERENCES "public"."warehouses"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "restocks_inbound_idx" ON "restocks" USING btree ("sku","warehouse_id") WHERE received_at IS NULL;--> statement-breakpoint
CREATE INDEX "allocations_recent_idx" ON "allocations" USING btree ("created_at","warehouse_id","sku");