/**
 * A TLS error message without the advice Node 24 appends about the system's CA store: prismctl's
 * own hints name --ca-file or the local stack's CA instead.
 */
export function withoutSystemCaAdvice(message: string): string {
  return message.replace(
    /; if the root CA is installed locally, try running Node\.js with --use-system-ca$/,
    '',
  );
}
