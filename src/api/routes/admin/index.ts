import type { FastifyInstance } from 'fastify';
import type { Context } from '../../../context.js';
import type { QueueHistory } from '../../../steps/queue-history.js';
import { carrierRoutes } from './carriers.js';
import { deadLetterRoutes } from './dead-letters.js';
import { forecastRoutes } from './forecast.js';
import { inventoryRoutes } from './inventory.js';
import { kpiRoutes } from './kpis.js';
import { overviewRoutes } from './overview.js';
import { regionRoutes } from './regions.js';
import { restockRoutes } from './restocks.js';
import { shipmentRoutes } from './shipments.js';
import { shopRoutes } from './shops.js';
import { supplierRoutes } from './suppliers.js';

/** Every `/v1/admin/*` route, one file per resource; the admin token is checked by the caller's scope. */
export async function adminRoutes(
  app: FastifyInstance,
  { ctx, queueHistory }: { ctx: Context; queueHistory: QueueHistory },
) {
  await app.register(shopRoutes, { ctx });
  await app.register(inventoryRoutes, { ctx });
  await app.register(restockRoutes, { ctx });
  await app.register(supplierRoutes, { ctx });
  await app.register(carrierRoutes, { ctx });
  await app.register(shipmentRoutes, { ctx });
  await app.register(deadLetterRoutes, { ctx });
  await app.register(regionRoutes, { ctx });
  await app.register(kpiRoutes, { ctx });
  await app.register(forecastRoutes, { ctx });
  await app.register(overviewRoutes, { ctx, queueHistory });
}
