import { toJson } from '@bufbuild/protobuf';
import { Args, Flags } from '@oclif/core';
import { adminClient, adminFlags } from '../../cli/admin-flags.js';
import { BaseCommand } from '../../cli/base-command.js';
import { canonicalObject } from '../../config/canonical.js';
import { NamespaceResponseSchema } from '../../gen/prism/config/v1/namespace_pb.js';
import { stringify } from 'yaml';

export default class NamespaceGet extends BaseCommand {
  static override summary = 'Show a namespace and what the control plane assigned to it';
  static override examples = [
    '<%= config.bin %> namespace get orders',
    '<%= config.bin %> namespace get orders --format json',
  ];
  static override args = { name: Args.string({ description: 'Namespace name', required: true }) };
  static override flags = {
    ...adminFlags,
    format: Flags.string({ description: 'Output format', options: ['yaml', 'json'], default: 'yaml' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NamespaceGet);
    const client = await adminClient(flags);
    try {
      const res = await client.get(args.name);
      const value = {
        declaration: canonicalObject(res.namespace!),
        assignment: toJson(NamespaceResponseSchema, res.assignment!, { useProtoFieldName: true }),
      };
      this.write(
        flags.format === 'json' ? JSON.stringify(value, null, 2) + '\n' : stringify(value, { lineWidth: 0 }),
      );
    } finally {
      client.close();
    }
  }
}
