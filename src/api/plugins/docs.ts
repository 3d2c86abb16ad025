import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/** OpenAPI 3 from the route schemas at /docs/json, Swagger UI at /docs. */
export async function registerDocs(app: FastifyInstance) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Surgeline',
        version: '1',
        description:
          'Order-processing engine for demand surges. Errors are application/problem+json (RFC 9457) with a `code`; ' +
          'validation errors list `errors: [{ path, message }]` where path is `body/…`, `query/…`, `path/…` or `headers/…`.',
      },
      components: {
        securitySchemes: {
          shopKey: { type: 'http', scheme: 'bearer', description: 'The shop API key' },
          adminToken: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' },
          adminSession: {
            type: 'apiKey',
            in: 'cookie',
            name: 'surgeline_admin',
            description:
              'The signed session /admin?token= sets (the operations page); a POST, PUT, PATCH or DELETE carried by it must also send "X-Surgeline-Admin: 1"',
          },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}
