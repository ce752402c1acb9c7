'use strict';
// hdb-bridge's HarperDB 4.7 component.
//
// A table made with create_table is invisible to REST/WebSocket until a component exports it.
// This file registers every table of every non-system database at /<database>/<table>/, as a
// subclass whose subscribe() honours three query parameters the plain export ignores:
//   startTime=<localTime>  replay every change after that checkpoint, then go live
//   previousCount=<N>      replay the last N changes, then go live
//   omitCurrent=true       skip the initial copy of the table's current records
//
// HarperDB reads a CommonJS resources.js through Node's export lexer, which only sees static
// `exports.NAME =` names, so a loop cannot export databases by name. Instead the loop registers
// each table in server.resources, the registry that exported names end up in anyway.
// It runs when a worker loads the component: tables created later need
// `restart_service http_workers` to appear.

const SYSTEM_DATABASES = new Set(['system']);

// Query parameter -> converter applied before it reaches the table's subscribe().
const PARAMS = {
	startTime: Number,
	previousCount: Number,
	omitCurrent: (text) => text === 'true' || text === '1' || text === '',
};

function resumable(Table) {
	return class extends Table {
		subscribe(request) {
			if (request && typeof request.get === 'function') {
				for (const [name, convert] of Object.entries(PARAMS)) {
					const text = request.get(name);
					if (text != null) request[name] = convert(String(text));
				}
			}
			return super.subscribe(request);
		}
	};
}

let count = 0;
for (const [dbName, db] of Object.entries(databases)) {
	if (SYSTEM_DATABASES.has(dbName)) continue;
	for (const [tableName, Table] of Object.entries(db)) {
		server.resources.set(`${dbName}/${tableName}`, resumable(Table));
		count++;
	}
}
logger.info(`hdb-bridge component: exported ${count} table(s)`);
