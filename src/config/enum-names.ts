import type { DescEnum } from '@bufbuild/protobuf';

/**
 * Namespace files spell enum values the way people write them ("best-effort"); protobuf JSON
 * spells them "DURABILITY_BEST_EFFORT". These two functions are the only mapping between them.
 */
export function yamlEnumValues(desc: DescEnum): string[] {
  return desc.values.filter((v) => v.number !== 0).map((v) => v.localName.toLowerCase().replace(/_/g, '-'));
}

/** The protobuf JSON name for a YAML enum spelling, or undefined when there is none. */
export function protoEnumName(desc: DescEnum, yamlValue: string): string | undefined {
  const value = desc.values.find(
    (v) => v.number !== 0 && v.localName.toLowerCase().replace(/_/g, '-') === yamlValue,
  );
  return value?.name;
}

/** The YAML spelling of a protobuf JSON enum name (identity for names it does not know). */
export function yamlEnumName(desc: DescEnum, protoName: string): string {
  const value = desc.values.find((v) => v.name === protoName);
  return value ? value.localName.toLowerCase().replace(/_/g, '-') : protoName;
}
