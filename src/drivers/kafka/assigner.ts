/**
 * A round-robin partition assigner that respects each member's subscription. Prism names a Kafka
 * consumer group after the namespace and the pattern's consumer group, so consumers of one group
 * on different topics are members of one Kafka group. kafkajs' own RoundRobinAssigner spreads the
 * partitions of every topic any member subscribed to over all members, so a consumer could be
 * handed only partitions of another member's topic and never receive anything from its own
 * (several consumers opened at once on different topics showed it); and kafkajs hands the leader's
 * assigner only the leader's own topics. Here every member's topics are assigned, each topic's
 * partitions round-robin over the members that subscribed to it, like Kafka's Java assigners.
 *
 * Listed before kafkajs' RoundRobinAssigner, so a group whose older members only know that one
 * keeps working until they are gone (the group uses the first protocol every member supports).
 */
import kafkajs, { type Assignment, type PartitionAssigner } from 'kafkajs';

// Not a named export Node's ESM loader sees in kafkajs' CommonJS build.
const { AssignerProtocol } = kafkajs;

export const SUBSCRIPTION_ASSIGNER_NAME = 'PrismSubscriptionRoundRobin';

export const subscriptionRoundRobin: PartitionAssigner = ({ cluster }) => ({
  name: SUBSCRIPTION_ASSIGNER_NAME,
  version: 0,

  async assign({ members, topics }) {
    const assignment = new Map<string, Assignment>();
    const subscribers = new Map<string, string[]>();
    for (const { memberId, memberMetadata } of [...members].sort((a, b) =>
      a.memberId.localeCompare(b.memberId),
    )) {
      assignment.set(memberId, Object.create(null) as Assignment);
      const { topics: subscribed } = AssignerProtocol.MemberMetadata.decode(memberMetadata) ?? { topics: [] };
      for (const topic of subscribed) {
        const list = subscribers.get(topic) ?? [];
        list.push(memberId);
        subscribers.set(topic, list);
      }
    }
    // kafkajs hands the leader only its own topics: take every member's, and load their metadata.
    const all = [...new Set([...topics, ...subscribers.keys()])].sort();
    await cluster.addMultipleTargetTopics(all);
    for (const topic of all) {
      const takers = subscribers.get(topic) ?? [];
      if (takers.length === 0) continue;
      const partitions = cluster
        .findTopicPartitionMetadata(topic)
        .map((p) => p.partitionId)
        .sort((a, b) => a - b);
      partitions.forEach((partition, i) => {
        const mine = assignment.get(takers[i % takers.length]!)!;
        (mine[topic] ??= []).push(partition);
      });
    }
    return [...assignment].map(([memberId, memberAssignment]) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({
        version: 0,
        assignment: memberAssignment,
        userData: Buffer.alloc(0),
      }),
    }));
  },

  protocol({ topics }) {
    return {
      name: SUBSCRIPTION_ASSIGNER_NAME,
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
    };
  },
});
