/**
 * What `iot-fleet --help` and `iot-fleet COMMAND --help` print. docs/provisioning.md quotes the
 * options and exit codes: change both together.
 */
import type { CommandName } from "./args.js";

export const GLOBAL_HELP = `Global options (any command):
      --home DIR                 Fleet home (default $IOT_FLEET_HOME or ./fleet).
      --passphrase-file FILE     CA key passphrase (or $IOT_FLEET_CA_PASSPHRASE).
  XMPP admin connection (provision without --invite-token, rotate, revoke, list --online):
      --admin-jid JID            Admin account (or $IOT_FLEET_ADMIN_JID).
      --admin-password-file FILE (or $IOT_FLEET_ADMIN_PASSWORD_FILE; $IOT_FLEET_ADMIN_PASSWORD).
      --server HOST:PORT         XMPP server, also written into bundles (or $IOT_FLEET_SERVER).
      --ca-file FILE             The server's CA certificate, trusted for TLS and embedded in bundles
                                 (or $IOT_FLEET_SERVER_CA_FILE).
      --pin SHA256               ...or the server certificate's SHA-256 pin.
      --timeout SECONDS          Per network step (default 20).`;

export const USAGE = `Usage: iot-fleet <command> [options]

Commands:
  ca init                 Create the fleet CA (signing key 0600 + self-signed certificate).
  ca show                 Print the CA certificate's subject, validity and SHA-256 fingerprint.
  release build           Pack an installed agent directory as a release signed by the fleet CA.
  provision DEVICE-ID     Make a signed enrolment bundle for one device.
  rotate DEVICE-ID        Have the device change its own password (or --admin-reset it).
  rotate SELECTOR         The same on every selected device, as a resumable job.
  revoke DEVICE-ID        Delete/disable the account and add the device to the revocation list.
  revoke SELECTOR         The same for every selected device, as a resumable job.
  revocations             Write the signed revocation list for devices.
  list [SELECTOR]         Devices and their state (provisioned, enrolled, revoked, tags, last seen).
  tag SELECTOR KEY=VALUE  Set (or --untag) tags on the selected devices.
  inventory [SELECTOR]    Online or not, versions, channels, telemetry and spool, credential age.
  watch SELECTOR          The selected devices' readings, live (a table, lines or JSON lines).
  exec SELECTOR COMMAND   Run a device command on every selected device, as a resumable job.
  update SELECTOR         Install a signed release on every selected device, as a resumable job.
  jobs                    The jobs run so far and their results.
  job JOB-ID [--resume]   One job's per-device results; --resume runs what is left of it.

SELECTOR picks devices: --all, --device ID (repeatable), --tag KEY=VALUE (repeatable, all must
match), --state provisioned|enrolled|revoked (repeatable), --older-than DURATION (credential age:
since the last rotation, else enrolment); the criteria given must all hold.

Run 'iot-fleet <command> --help' for its options.

${GLOBAL_HELP}

Exit codes: 0 ok, 1 failure, 2 usage, 3 fleet state forbids it (unknown/enrolled/revoked device,
unknown job, CA missing or present), 4 refused on security grounds (passphrase, CSR), 5 XMPP server
failed or refused, 6 fleet store locked or corrupt, or the job is run by another process, 7 a job
ended with devices that did not complete.`;

export const HELP: Record<CommandName, string> = {
  "ca init": `Usage: iot-fleet ca init [--cn NAME] [--org ORG] [--valid-days N] [--passphrase-file FILE] [--force]

Creates HOME/ca/ca.key.pem (RSA-3072, mode 0600, encrypted when a passphrase is given) and
HOME/ca/ca.cert.pem (self-signed, CA:true). Refuses to overwrite an existing CA unless --force.
Copy ca.cert.pem (or its fingerprint, see 'ca show') into device images: it is what devices trust.`,
  "release build": `Usage: iot-fleet release build [--from DIR] [--out DIR] [--passphrase-file FILE]

Packs the agent directory DIR (default: the current one) as installed on a device: bin/, dist/,
node_modules/ (production only, native addons built for this machine's Node.js), package.json and
package-lock.json, into a gzip'd tar, and writes its manifest signed by the fleet CA beside it
(name, package.json's version, Node ABI/platform/arch, size, SHA-256, free disk needed). The
release's own bin/iot-agent.js --version must report package.json's version.

      --from DIR     The agent directory (npm ci && npm run build && npm prune --omit=dev).
  -o, --out DIR      Where the archive and manifest go (default: FLEET-HOME/releases).`,
  "ca show": `Usage: iot-fleet ca show

Prints the fleet CA certificate's subject, validity and SHA-256 fingerprint.`,
  provision: `Usage: iot-fleet provision DEVICE-ID --out FILE [--invite | --admin-password] [options]

Credential path (one):
      --invite                   (default) Ask the server for a one-time account invite (Prosody
                                 mod_invites_adhoc); the device registers itself with a password it
                                 generates. The password never leaves the device.
      --invite-token TOKEN       Use an invite token obtained elsewhere (e.g. prosodyctl); no XMPP step.
      --admin-password           Create the account now over XEP-0133 with a random password. With
                                 --csr the password is sealed to the device key; without, it is in
                                 clear inside the signed bundle (weaker: protect the file).
Device:
      --jid JID                  Device JID (default DEVICE-ID@<domain of --domain or --admin-jid>).
      --domain DOMAIN            XMPP domain of the device JID.
      --csr FILE                 Device CSR from 'iot-agent enroll --make-csr': issues a client
                                 certificate (SASL EXTERNAL) and seals the admin password to its key.
      --cert-days N              Client certificate validity (default 365).
      --resource RES             Resource the agent binds (default agent), for 'rotate'.
      --tag KEY=VALUE            Record a tag for the device (repeatable), e.g. site=greenhouse-2.
Bundle:
      --out FILE                 Where to write the bundle (mode 0600). Required.
      --pubsub SERVICE           Pubsub service JID (default: PEP).
      --operator JID             Operator allowed to run every command (repeatable). The admin JID is
                                 added as a fleet admin, allowed only 'rotate-credentials'.
      --valid-for DURATION       Bundle lifetime: 30m, 12h, 7d (default 7d).
      --tls-servername NAME      TLS name if it differs from the domain.
      --force                    Issue a new bundle for an already enrolled device.
      --json                     Print the result as JSON.`,
  rotate: `Usage: iot-fleet rotate DEVICE-ID [--admin-reset --out FILE]

Default: runs the device's ad-hoc command 'rotate-credentials' at DEVICE-JID/RESOURCE; the device
generates a new password, changes it with XEP-0077 and keeps its session (no telemetry lost).
--admin-reset: break-glass when the device is unreachable: sets a new random password with XEP-0133
change-user-password (the server closes the device's sessions) and writes a new admin-path bundle
to --out for re-enrolment ('iot-agent enroll --force'). Accepts --csr to seal it to the device key.

Usage: iot-fleet rotate (--all | --device ID ... | --tag KEY=VALUE ... | --state STATE ...) [job options]
Every selected device (not revoked) runs 'rotate-credentials', as a job like 'exec' (same options:
--concurrency, --device-timeout, --wait, --poll, --max-failures, --batch, --json; see 'exec --help');
the store records the rotation of each device that completed. Exit status 0 when all completed, 7
otherwise.`,
  revoke: `Usage: iot-fleet revoke DEVICE-ID [--disable] [--local-only] [--export FILE]

Ends the device's sessions and deletes its account (XEP-0133 delete-user; --disable tries
disable-user first, which neither Prosody 0.12 nor ejabberd 23.01 offer), marks it revoked and adds
its bundles, certificate serials and JID to the signed revocation list (HOME/revocations.json,
also copied to --export FILE). --local-only records the revocation without contacting the server.
Safe to re-run: a revoked device's account is deleted again if the first attempt failed.

Usage: iot-fleet revoke (--all | --device ID ... | --tag KEY=VALUE ... | --state STATE ...) [--disable] [--local-only] [--export FILE] [job options]
Records every selected device as revoked and writes the signed list first, then shuts each
account out on the server as a job (per-device results; --concurrency, --max-failures, --json as
for 'exec'; devices need not be online). With --local-only no job runs; 'iot-fleet job ID --resume'
runs it later.`,
  revocations: `Usage: iot-fleet revocations --out FILE

Writes the current revocation list, signed by the fleet CA, for 'iot-agent enroll --revocations'.`,
  list: `Usage: iot-fleet list [--all | --device ID ... | --tag KEY=VALUE ... | --state STATE ...] [--online] [--json]

Lists known devices, all of them unless a selector narrows it: --device ID (repeatable), --tag
KEY=VALUE (repeatable, every tag must match), --state provisioned|enrolled|revoked (repeatable).
--online asks the server which accounts are online (XEP-0133 get-online-users-list) and records
their last-seen time first.`,
  tag: `Usage: iot-fleet tag (--all | --device ID ... | --tag KEY=VALUE ... | --state STATE ...) [KEY=VALUE ...] [--untag KEY ...]

Sets tags (KEY=VALUE: key 1-32 of a-z 0-9 . _ -, value 1-64 characters without spaces, ',' or
'=') and removes tags (--untag KEY) on every selected device, in one store transaction. A key has
one value: setting it again replaces it. At most 32 tags per device. A selector is required.
Examples:
  iot-fleet tag --device pi-01 --device pi-02 site=greenhouse-2 hw=pi4
  iot-fleet tag --tag site=greenhouse-2 --untag hw`,
  exec: `Usage: iot-fleet exec (--all | --device ID ... | --tag KEY=VALUE ... | --state STATE ...) COMMAND [FIELD=VALUE ...] [options]

Runs the ad-hoc command COMMAND (XEP-0050 node, e.g. set-sampling) at DEVICE-JID/RESOURCE on every
selected device (revoked ones are left out), filling its form with the FIELD=VALUE pairs (a field
given twice has two values). The admin account must be one of the device's operators allowed to
run COMMAND; a device that refuses says why in the table. The run is a job saved under HOME/jobs:
Ctrl-C ends it after the commands in flight, and 'iot-fleet job ID --resume' runs the rest; a
device that may have got the command before an interruption is reported "unknown", never sent it
twice.
      --concurrency N            Commands in flight at once (default 16, at most 256).
      --device-timeout SECONDS   Per device, for the whole command (default 30).
      --wait DURATION            Wait this long (30m, 12h, 7d) for devices that are offline and run
                                 the command when they come online; default 0: reported offline.
      --poll SECONDS             How often the server's online list is read while waiting (default 15).
      --max-failures N|P%        Abort the devices not yet started once more than N (or P% of the
                                 job's devices) failed (error or timed out).
      --batch N|P%               Staged rollout: waves of N devices (or P%); a wave starts when
                                 every device of the one before has finished or is waiting.
      --json                     Print the job (every device's status and note) as JSON.
Per device: completed, error (with the device's note), timed-out, offline, aborted, unknown.
Exit status 0 when every device completed, 7 otherwise.
Examples:
  iot-fleet exec --tag site=greenhouse-2 set-sampling channel=temp0 intervalMs=10000
  iot-fleet exec --all status --concurrency 32 --wait 2h --batch 10% --max-failures 2`,
  update: `Usage: iot-fleet update SELECTOR --release MANIFEST (--share JID | --url URL) [--allow-downgrade] [options]

Installs the release MANIFEST (a signed manifest from 'iot-fleet release build'; its archive
beside it) on every selected device (revoked ones are left out), through each device's 'update'
command (docs/update.md). With --share, the archive is first uploaded to the server's HTTP file
share (XEP-0363, e.g. share.example.org); --url names an archive already there. The manifest must
be signed by this fleet's CA. Per device the job waits for the outcome: the release running and
committed after its health check (completed: "updated to X"), or rolled back (error, with the
device's reason), or refused before any download (error: update_not_newer, update_wrong_platform,
update_formats, ...). A device already running the version is completed. Like exec, the run is a
job: waves (--batch), --max-failures, --wait, Ctrl-C and 'iot-fleet job ID --resume'.
      --release FILE             The signed manifest (*.manifest.json).
      --share JID                Upload the archive (found beside the manifest) to this XEP-0363 service.
      --url URL                  ...or the archive's https URL, already uploaded.
      --allow-downgrade          Install even if older than what a device runs.
      --device-timeout SECONDS   Per device, from the command to the outcome (default 300, at most 600).
      --concurrency, --wait, --poll, --max-failures, --batch, --json: as for exec.
Exit status 0 when every device completed, 7 otherwise.
Examples:
  iot-fleet update --tag ring=canary --release xmpp-iot-agent-0.2.0-node115-linux-arm64.manifest.json --share share.example.org
  iot-fleet update --all --release R.manifest.json --url https://share.example.org/... --batch 10% --max-failures 2`,
  inventory: `Usage: iot-fleet inventory [SELECTOR] [--online | --offline] [--older-than DURATION] [--spool-over N] [--agent-below VERSION] [--sort KEY] [--json]

One row per selected device (all by default): online now (the server's online list, XEP-0133), last
seen, agent and firmware version, channels, telemetry's state and the readings in its spool, and
how old those figures are (from the device's status item, XEP-0060, published at login, on every
change and every 15 minutes), credential age (since enrolment or the last rotation), state, tags.
The admin account must be allowed to read the devices' status nodes (an operator or a reader).
      --online, --offline        Only devices online now / not online now.
      --spool-over N             Only devices whose status item reports more than N spooled readings.
      --agent-below VERSION      Only devices whose agent is older than VERSION (dotted numbers).
      --sort KEY                 id (default), last-seen, credential-age, spool (largest first), agent.
      --pubsub SERVICE           Pubsub service for devices whose record names none (default: their PEP).
      --node-prefix PREFIX       Node prefix of the devices (default devices/).
      --concurrency N            Status items read at once (default 16).
      --json                     The rows as JSON (ages in ms, times as ISO strings).`,
  watch: `Usage: iot-fleet watch (--all | --device ID ... | --tag KEY=VALUE ... | --state STATE ... | --older-than D) [--json] [--seconds N]

Subscribes this run's session (its full JID) to the selected devices' telemetry nodes (XEP-0060)
and shows every new reading: on a terminal a table of the latest value per device and channel
(value, unit, age, quality), redrawn every second; otherwise one line per reading; with --json one
JSON object per line (device, channel, seq, value, unit, sampledAt, quality, historical). A
reading seen before or older than its channel's newest is not shown again. Ends on Ctrl-C or after
--seconds N, and unsubscribes. The admin account must be allowed to read the nodes.
      --pubsub SERVICE           Pubsub service for devices whose record names none (default: their PEP).
      --node-prefix PREFIX       Node prefix of the devices (default devices/).`,
  jobs: `Usage: iot-fleet jobs [--json]

Lists the jobs under HOME/jobs, newest first: id, when, command, devices, state (running,
finished, aborted, interrupted) and the count of each result.`,
  job: `Usage: iot-fleet job JOB-ID [--resume] [--poll SECONDS] [--json]

Prints the job's per-device results (as JSON with --json). --resume runs what is left: devices
pending or waiting (until the job's wait ends); finished devices and the ones that may have run
the command when the job was interrupted ("unknown") are not sent it again. Exit status as exec.`,
};
