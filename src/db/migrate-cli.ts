import { ConfigError, loadConfig } from '../config.js';
import { openDatabase } from './client.js';

/** `npm run db:migrate`: applies drizzle/ to DATABASE_URL (or the embedded database). */
try {
  const config = loadConfig();
  const database = openDatabase(config.databaseUrl, config.dataDir);
  await database.migrate();
  await database.close();
  console.log(`migrations applied (${database.kind})`);
} catch (error) {
  console.error(
    error instanceof ConfigError
      ? `configuration error: ${error.message}`
      : `migration failed: ${(error as Error).message}`,
  );
  process.exit(1);
}
