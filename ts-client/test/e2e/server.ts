// Builds and runs the real Agora server for the end-to-end tests: `cargo build -p agora-server`,
// then `agora serve` on a free loopback port, ready once GET /readyz answers 200.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (ts-client/test/e2e/ → ../../..). */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

let built: Promise<string> | undefined;

/**
 * Builds the server once per test process and returns the binary's path, as cargo reports it.
 * AGORA_E2E_BINARY=/path/to/agora skips the build (e.g. a binary CI already built).
 */
export function buildServer(): Promise<string> {
  const prebuilt = process.env.AGORA_E2E_BINARY;
  if (prebuilt) return Promise.resolve(prebuilt);
  built ??= new Promise((resolve, reject) => {
    // Asking cargo for the artifact path respects CARGO_TARGET_DIR and any target-dir config.
    const cargo = spawn("cargo", ["build", "-q", "-p", "agora-server", "--bin", "agora", "--message-format=json"], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let stdout = "";
    cargo.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    cargo.on("error", reject);
    cargo.on("close", (code) => {
      if (code !== 0) return reject(new Error(`cargo build -p agora-server failed (exit ${code})`));
      for (const line of stdout.split("\n")) {
        if (!line.startsWith("{")) continue;
        const message = JSON.parse(line) as { reason?: string; target?: { name?: string }; executable?: string | null };
        if (message.reason === "compiler-artifact" && message.target?.name === "agora" && message.executable) {
          return resolve(message.executable);
        }
      }
      reject(new Error("cargo did not report the agora executable"));
    });
  });
  return built;
}

/** A free loopback port: bind port 0, read it, release it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

export interface RunningServer {
  baseUrl: string;
  process: ChildProcess;
  /** Everything the server printed, for failure messages. */
  log(): string;
  /** Kills the server (SIGKILL: a draining server would otherwise linger) and removes its directory. */
  stop(): Promise<void>;
}

/** Starts `agora serve` with `env` on a free port and waits until /readyz answers 200. */
export async function startServer(env: Record<string, string> = {}): Promise<RunningServer> {
  const binary = await buildServer();
  const port = await freePort();
  // A fresh working directory: no stray agora.toml is read and any data files stay out of the repo.
  const cwd = await mkdtemp(join(tmpdir(), "agora-e2e-"));
  // Outer AGORA_* settings (e.g. a production profile) must not change what is tested.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("AGORA_")));
  const child = spawn(binary, ["serve"], {
    cwd,
    env: { ...inherited, AGORA_HTTP__BIND: `127.0.0.1:${port}`, AGORA_LOG__LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const server: RunningServer = {
    baseUrl: `http://127.0.0.1:${port}`,
    process: child,
    log: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await exited;
      }
      await rm(cwd, { recursive: true, force: true });
    },
  };

  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      await server.stop();
      throw new Error(`agora exited with ${child.exitCode} before it was ready:\n${output}`);
    }
    try {
      const response = await fetch(`${server.baseUrl}/readyz`);
      await response.body?.cancel();
      if (response.status === 200) return server;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await server.stop();
  throw new Error(`agora was not ready within 30s:\n${output}`);
}
