import { create } from '@bufbuild/protobuf';
import { SlotAssignmentSchema, type SlotAssignment } from '../gen/prism/config/v1/namespace_pb.js';

export type { SlotAssignment };

/** One slot's binding as the control plane assigns it, for a SlotSet built in a test. */
export function slotAssignment(init: {
  slot: string;
  backend: string;
  /** Empty: the backend's default local endpoint. */
  endpoint?: string;
  /** `vault://...` or `${ENV}`; empty when the backend needs no credentials. */
  credentialRef?: string;
}): SlotAssignment {
  return create(SlotAssignmentSchema, init);
}
