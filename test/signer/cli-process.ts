// The real `vigil signer start` as a child process (test/helpers/signer-process.ts, re-exported here), with its
// stdout wherever a test wants it (a full device, a file on a tiny tmpfs, a pipe nobody reads), and tmpfs mounts
// for disk-full tests.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { http } from "./harness.js";

export { CLI, killLeftovers, spawnSigner, stopWithSigterm, writeSignerConfig, type SignerProcess } from "../helpers/signer-process.js";

/** Mounts a tmpfs of `sizeKb` on `dir`; returns why not if it cannot (not root, no mount, in a container without it). */
export function mountTmpfs(dir: string, sizeKb: number): string | undefined {
  fs.mkdirSync(dir, { recursive: true });
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeKb}k,mode=0700`, "tmpfs", dir], { stdio: "pipe" });
    return undefined;
  } catch (err) {
    return `cannot mount a tmpfs here (${(err as Error).message.split("\n")[0]})`;
  }
}

/**
 * Mounts a small ext4 image (loop device, errors=remount-ro) on `dir`; returns why not if it cannot. Unlike
 * `mount -o remount,ro` (refused while the signer holds files open for writing), ext4's trigger_fs_error turns
 * the filesystem read-only under the running signer, as a failing disk does.
 */
export function mountExt4(dir: string, image: string, sizeMb: number): string | undefined {
  fs.mkdirSync(dir, { recursive: true });
  try {
    fs.writeFileSync(image, "");
    fs.truncateSync(image, sizeMb * 1024 * 1024);
    execFileSync("mkfs.ext4", ["-q", "-F", image], { stdio: "pipe" });
    execFileSync("mount", ["-o", "loop,errors=remount-ro", image, dir], { stdio: "pipe" });
    fs.chmodSync(dir, 0o700);
    return undefined;
  } catch (err) {
    return `cannot mount an ext4 loop image here (${(err as Error).message.split("\n")[0]})`;
  }
}

/** Makes the ext4 filesystem mounted on `dir` read-only now (see mountExt4). */
export function makeExt4ReadOnly(dir: string): void {
  const source = execFileSync("findmnt", ["-n", "-o", "SOURCE", dir], { encoding: "utf8" }).trim();
  fs.writeFileSync(`/sys/fs/ext4/${path.basename(source)}/trigger_fs_error`, "1");
}

export function unmount(dir: string): void {
  try {
    execFileSync("umount", ["-l", dir], { stdio: "pipe" });
  } catch {
    /* already gone */
  }
}

/** Fills the filesystem holding `dir` with one file; returns the file (delete it to free the space). */
export function fillDisk(dir: string): string {
  const file = path.join(dir, "filler");
  const fd = fs.openSync(file, "a");
  const chunk = Buffer.alloc(4096, 1);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
  } finally {
    fs.closeSync(fd);
  }
  // A partial block may remain; fill it byte by byte so not even a small write fits.
  const small = fs.openSync(file, "a");
  try {
    for (;;) fs.writeSync(small, Buffer.alloc(1, 1));
  } catch {
    /* full */
  } finally {
    fs.closeSync(small);
  }
  return file;
}

/** The value of an unlabelled or labelled sample in a Prometheus text body (0 if absent). */
export function metricValue(body: string, name: string, labels = ""): number {
  const line = body.split("\n").find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ""} `));
  return line ? Number(line.split(" ").pop()) : 0;
}

export async function metrics(url: string): Promise<string> {
  return (await http(`${url}/metrics`)).text;
}
