/**
 * Reads a password from the terminal without echoing it: never from argv (other users see it in ps) nor an
 * environment variable. Only on a TTY: a script gives a password file instead.
 */
import { EXIT_CODES } from "../common/index.js";
import { CliError } from "./errors.js";

export function canPrompt(): boolean {
  return process.stdin.isTTY === true && process.stderr.isTTY === true;
}

export function promptPassword(question: string): Promise<string> {
  const stdin = process.stdin;
  // No echo before the question shows: a password typed (or pasted) the moment it appears must not be echoed.
  stdin.setRawMode(true);
  process.stderr.write(question);
  stdin.setEncoding("utf8");
  stdin.resume();
  return new Promise((resolve, reject) => {
    let password = "";
    const finish = () => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === "\r" || ch === "\n") {
          finish();
          resolve(password);
          return;
        }
        if (ch === "\u0003" || ch === "\u0004") {
          // Ctrl-C / Ctrl-D: raw mode turns them into input, so they are handled here.
          finish();
          reject(new CliError("USAGE", "no password given", EXIT_CODES.usage));
          return;
        }
        if (ch === "\u007f" || ch === "\b") password = password.slice(0, -1);
        else password += ch;
      }
    };
    stdin.on("data", onData);
  });
}
