import { Command } from "commander";
import { disableCoreDumps } from "../common/index.js";
import { keystoreCommands } from "./keys.js";
import { exitWithError } from "./run.js";
import { signerCommand } from "./signer.js";
import { slashingCommand } from "./slashing.js";
import { watchdogCommands } from "./watchdog.js";

// Before any command reads a PIN or decrypts a key: a core dump would put them on disk.
try {
  disableCoreDumps();
} catch (err) {
  exitWithError(err);
}

const program = new Command("vigil")
  .description("Vigil: Ethereum validator operations — remote signer, slashing protection, guarded failover")
  .version("0.1.0");

program.addCommand(slashingCommand());
for (const cmd of keystoreCommands()) program.addCommand(cmd);
program.addCommand(signerCommand());
for (const cmd of watchdogCommands()) program.addCommand(cmd);

program.addHelpText(
  "after",
  `
Exit codes: 0 ok, 1 failed, 2 usage, 3 invalid input, 4 refused by slashing protection,
5 not found, 6 conflict, 10-16 HSM and key store, 20-21 failover, 40-44 slashing database server
(unreachable, authentication, other network, schema too new, not durable). See README.md.`,
);

// Settings made on the root do not reach commands attached with addCommand: apply them to the whole tree,
// so a usage error anywhere exits 2 with the help hint.
(function applyToTree(cmd: Command): void {
  cmd.exitOverride().showHelpAfterError();
  cmd.commands.forEach(applyToTree);
})(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  exitWithError(err);
}
