/**
 * `dora top`, `dora topic list|info` and the web view of a dataflow spread over several
 * machines: each part measures its own nodes (the counters their cores report, CPU and
 * memory from its machine's /proc: coordinator/metrics.ts), and the coordinator asks every
 * part at once and merges the answers, each node, edge and output taken from the machine
 * that measures it (a node's from its own machine, an edge's from its receiver's, an
 * output's from its sender's) and tagged with that machine. A machine that does not answer
 * within OBSERVE_TIMEOUT_MS does not fail the whole answer: its nodes, edges and outputs
 * are there without numbers, `stale` saying why.
 */
import type { EdgeMetrics, MetricsReply, NodeMetrics, TopicInfo, TopicsReply } from '../metrics';
import type { ClusterRun } from './clusterrun';

/** How long a machine has to answer: `dora top` refreshes every second, and a daemon silent for 2 s is lost (server.ts). */
export const OBSERVE_TIMEOUT_MS = 1000;

/** Every machine's answer, or why there is none. */
async function askAll<T>(run: ClusterRun, what: 'metrics' | 'topics'): Promise<Map<string, T | string>> {
  const answers = await Promise.all(
    run.machines.map(async (machine): Promise<[string, T | string]> => {
      try {
        return [machine, (await run.observePart(machine, what, OBSERVE_TIMEOUT_MS)) as T];
      } catch (err) {
        const why = (err as Error).message;
        return [machine, why.startsWith(`machine ${machine} `) ? why : `machine ${machine}: ${why}`];
      }
    }),
  );
  return new Map(answers);
}

export async function clusterMetrics(run: ClusterRun): Promise<MetricsReply> {
  const replies = await askAll<MetricsReply>(run, 'metrics');
  const reply = (machine: string) => {
    const r = replies.get(machine);
    return typeof r === 'object' ? r : undefined;
  };
  const nodes: NodeMetrics[] = run.nodeOutcomes().map((n) => {
    const machine = run.machineOf(n.id)!;
    const own = reply(machine)?.nodes.find((m) => m.id === n.id);
    if (own) return { ...own, machine };
    return {
      id: n.id,
      pid: n.pid ?? null,
      status: n.status,
      cpuPercent: null,
      rssBytes: null,
      restarts: n.restarts,
      samplesHeld: 0,
      queueDepth: 0,
      dropped: 0,
      messagesSent: 0,
      messagesReceived: 0,
      machine,
      stale: replies.get(machine) as string,
    };
  });
  const edges: EdgeMetrics[] = [];
  for (const node of run.dataflow.nodes) {
    const machine = run.machineOf(node.id)!;
    for (const input of node.inputs) {
      const target = `${node.id}/${input.id}`;
      const own = reply(machine)?.edges.find((e) => e.target === target);
      if (own) {
        edges.push({ ...own, machine });
        continue;
      }
      const source = input.source.kind === 'node' ? `${input.source.node}/${input.source.output}` : input.source.name;
      edges.push({ source, target, messagesPerSec: 0, bytesPerSec: 0, latencyP50Us: null, latencyP99Us: null, dropped: 0, queueDepth: 0, messages: 0, bytes: 0, machine, stale: replies.get(machine) as string });
    }
  }
  return { ok: true, at: Date.now(), nodes, edges };
}

export async function clusterTopics(run: ClusterRun): Promise<TopicsReply> {
  const replies = await askAll<TopicsReply>(run, 'topics');
  const answered = [...replies.values()].filter((r): r is TopicsReply => typeof r === 'object');
  const topics: TopicInfo[] = [];
  for (const node of run.dataflow.nodes) {
    const machine = run.machineOf(node.id)!;
    const own = replies.get(machine);
    for (const output of node.outputs) {
      const name = `${node.id}/${output}`;
      const measured = typeof own === 'object' ? own.topics.find((t) => t.name === name) : undefined;
      if (measured) {
        topics.push({ ...measured, machine });
        continue;
      }
      // the descriptor's side of it (type, subscribers) from any part: they all know the whole dataflow
      const described = answered.flatMap((r) => r.topics).find((t) => t.name === name);
      const subscribers = run.dataflow.nodes.flatMap((n) => n.inputs.filter((i) => i.source.kind === 'node' && i.source.node === node.id && i.source.output === output).map((i) => `${n.id}/${i.id}`));
      topics.push({
        name,
        node: node.id,
        output,
        dynamic: node.dynamic,
        type: described?.type ?? null,
        subscribers,
        routed: described?.routed ?? false,
        taps: 0,
        messages: 0,
        bytes: 0,
        messagesPerSec: 0,
        bytesPerSec: 0,
        machine,
        stale: typeof own === 'string' ? own : `machine ${machine} did not describe ${name}`,
      });
    }
  }
  return { ok: true, at: Date.now(), topics };
}
