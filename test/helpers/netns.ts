/**
 * Network namespaces made for one test (`ip netns`), with loopback up, and
 * removed after it: the processes inside are killed by pid first. Rules that
 * drop packets (nft) live inside the namespace and go with it.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';

export interface TestNetns {
  name: string;
  /** The namespace's inode: what /proc/PID/ns/net of a process inside shows, and the kernel's sock_net(sk)->ns.inum. */
  inode: number;
  /** Runs a command inside the namespace: `[...prefix, cmd, ...args]`. */
  prefix: string[];
  remove(): void;
}

export function createNetns(tag: string): TestNetns {
  const name = `pm-${tag}-${process.pid}`;
  execFileSync('ip', ['netns', 'add', name]);
  try {
    execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (e) {
    execFileSync('ip', ['netns', 'del', name]);
    throw e;
  }
  return {
    name,
    inode: fs.statSync(`/run/netns/${name}`).ino,
    prefix: ['ip', 'netns', 'exec', name],
    remove() {
      // `ip netns pids` names what still runs inside: kill it so the namespace can go.
      const pids = execFileSync('ip', ['netns', 'pids', name]).toString().split('\n').filter(Boolean).map(Number);
      for (const pid of pids) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
      execFileSync('ip', ['netns', 'del', name]);
      if (fs.existsSync(`/run/netns/${name}`)) throw new Error(`network namespace ${name} still exists`);
    },
  };
}

export interface PacketLoss {
  remove(): void;
}

/**
 * Drops about one in `n` TCP segments sent from `port` (retransmits follow), with an nft table of
 * its own: inside `ns`, or in the agent's namespace when none is given (only that port is touched).
 */
export function dropFromPort(port: number, n: number, ns?: TestNetns): PacketLoss {
  const table = `pm_loss_${process.pid}_${port}`;
  const nft = (...args: string[]) => execFileSync(ns ? 'ip' : 'nft', ns ? ['netns', 'exec', ns.name, 'nft', ...args] : args);
  nft('add', 'table', 'inet', table);
  // Dropped on arrival, not on the way out: a segment refused by the output hook is
  // never sent, and TCP sends it again as new data, not as a retransmission.
  nft('add', 'chain', 'inet', table, 'in', '{ type filter hook input priority 0; }');
  nft('add', 'rule', 'inet', table, 'in', 'tcp', 'sport', String(port), 'numgen', 'random', 'mod', String(n), '==', '0', 'drop');
  return { remove: () => { nft('delete', 'table', 'inet', table); } };
}
