/**
 * The server configurations a fleet is tested and measured against (test/fleet, bench/fleet.ts),
 * each started fresh on loopback: Prosody with its default file storage, Prosody on PostgreSQL and ejabberd on
 * PostgreSQL, the last two with the shipped fleet settings (deploy/servers/). `pids` are the roots
 * of the server side (the XMPP server, PostgreSQL's postmaster with its backends below it).
 */
import { createEjabberdDatabase, type EjabberdHandle, ejabberdFleetConfig, startEjabberd } from "./ejabberd.js";
import { createCertificate } from "./certs.js";
import { type PostgresHandle, startPostgres } from "./postgres.js";
import { PROSODY_FLEET_CONFIG, type ProsodyHandle, startProsody } from "./prosody.js";
import { makeTempDir } from "./tmp.js";

export const ADMIN = { user: "admin", password: "fleet-bench-admin" };
export const OPERATOR = { user: "operator", password: "fleet-bench-operator" };

export const SERVER_KINDS = ["prosody-file", "prosody-postgresql", "ejabberd-postgresql"] as const;
export type ServerKind = (typeof SERVER_KINDS)[number];

export interface FleetServer {
  kind: ServerKind;
  port: number;
  domain: string;
  caFile: string;
  pubsubJid: string;
  /** The root processes of the server side (the XMPP server, PostgreSQL): measure their trees. */
  pids(): number[];
  /** Stops and starts the XMPP server on the same data and port (sessions are lost). */
  restart?: () => Promise<void>;
  /** Why there is no restart, when there is none. */
  restartUnsupported?: string;
  stop(): Promise<void>;
}

/** Starts `kind` with accounts for the admin and the operator; `deviceJids` may create pubsub nodes. */
export async function startFleetServer(kind: ServerKind, deviceJids: string[]): Promise<FleetServer> {
  switch (kind) {
    case "prosody-file":
    case "prosody-postgresql":
      return prosodyServer(kind, deviceJids);
    case "ejabberd-postgresql":
      return ejabberdServer(kind);
  }
}

/**
 * prosody-file: Prosody as installed (file storage, default settings), the baseline.
 * prosody-postgresql: the shipped fleet.cfg.lua and PostgreSQL storage. Both log at info: at debug
 * (the tests' level) formatting every stanza costs Prosody more than handling it.
 */
async function prosodyServer(kind: ServerKind, deviceJids: string[]): Promise<FleetServer> {
  const pg: PostgresHandle | undefined = kind === "prosody-postgresql" ? await startPostgres() : undefined;
  let prosody: ProsodyHandle | undefined;
  try {
    if (pg) await pg.createDatabase("prosody");
    prosody = await startProsody({
      admins: [`${ADMIN.user}@iot.test`],
      // Prosody 0.12 lets only admins create nodes on a pubsub component (docs/servers.md).
      pubsubAdmins: deviceJids,
      logLevel: "info",
      ...(pg
        ? {
            storage: {
              driver: "PostgreSQL" as const,
              host: pg.host,
              port: pg.port,
              database: "prosody",
              username: pg.user,
              password: pg.password,
            },
            include: [PROSODY_FLEET_CONFIG],
            extraModules: ["limits"],
            // After the include, so it wins: the collector and the admin read at full speed.
            extraGlobalLua: `unlimited_jids = { "${OPERATOR.user}@iot.test", "${ADMIN.user}@iot.test" }`,
          }
        : { smacksHibernationTime: 300 }),
    });
    await prosody.register(ADMIN.user, ADMIN.password);
    await prosody.register(OPERATOR.user, OPERATOR.password);
    const p = prosody;
    return {
      kind,
      port: p.port,
      domain: p.domain,
      caFile: p.caFile!,
      pubsubJid: p.pubsubJid,
      pids: () => [p.process.pid, ...(pg ? [pg.process.pid] : [])],
      restart: () => p.restart(),
      stop: async () => {
        await p.stop();
        await pg?.stop();
      },
    };
  } catch (err) {
    await prosody?.stop();
    await pg?.stop();
    throw err;
  }
}

/**
 * ejabberd 23.01 on PostgreSQL with the shipped fleet.yml. Devices create their own nodes
 * (pubsub_createnode: local accounts). A restart is a new instance on the same database and port:
 * accounts and pubsub survive, stream-management sessions (in memory) do not.
 */
async function ejabberdServer(kind: ServerKind): Promise<FleetServer> {
  const pg: PostgresHandle = await startPostgres();
  // The certificate outlives each instance (an instance removes its own directory when it stops).
  const certDir = makeTempDir("iot-fleet-cert-");
  let ejabberd: EjabberdHandle | undefined;
  try {
    const sql = await createEjabberdDatabase(pg, "ejabberd");
    const certificate = await createCertificate({ dir: certDir.path, host: "iot.test" });
    const start = (port?: number) =>
      startEjabberd({
        admins: [`${ADMIN.user}@iot.test`, `${OPERATOR.user}@iot.test`],
        nodeCreators: "local",
        resumeTimeout: 300,
        sql,
        ...ejabberdFleetConfig(),
        certificate,
        ...(port ? { port } : {}),
      });
    ejabberd = await start();
    await ejabberd.register(ADMIN.user, ADMIN.password);
    await ejabberd.register(OPERATOR.user, OPERATOR.password);
    const first = ejabberd;
    return {
      kind,
      port: first.port,
      domain: first.domain,
      caFile: first.caFile,
      pubsubJid: first.pubsubJid,
      pids: () => [ejabberd!.process.pid, pg.process.pid],
      restart: async () => {
        const old = ejabberd!;
        await old.stop();
        ejabberd = await start(old.port);
      },
      stop: async () => {
        await ejabberd?.stop();
        await pg.stop();
        certDir.remove();
      },
    };
  } catch (err) {
    await ejabberd?.stop();
    await pg.stop();
    certDir.remove();
    throw err;
  }
}
