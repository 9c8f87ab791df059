// An application that migrates its database at start-up through the migrations extension.
//
// It registers every migration it ships (an unchanged one is a no-op) and calls migrate.up();
// any number of instances may start at once. Connection settings come from the PG* environment.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { Client } = require('pg');

const MIGRATIONS = path.resolve(__dirname, '..', '..', 'migrations');

async function migrate(client) {
  const files = fs.readdirSync(MIGRATIONS).filter((file) => file.endsWith('.sql')).sort();
  for (const file of files) {
    const stem = path.basename(file, '.sql');
    const split = stem.indexOf('_');
    const script = fs.readFileSync(path.join(MIGRATIONS, file), 'utf8');
    await client.query('SELECT migrate.register_script($1, $2, $3)', [
      stem.slice(0, split),
      stem.slice(split + 1),
      script,
    ]);
  }
  const result = await client.query('SELECT migrate.up() AS applied');
  return result.rows[0].applied;
}

async function main() {
  const client = new Client();
  await client.connect();
  try {
    const applied = await migrate(client);
    console.log(`started: node instance applied ${applied} migrations`);
  } finally {
    await client.end();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
