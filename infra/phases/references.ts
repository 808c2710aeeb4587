// Reading the layers below through StackReferences.
import * as pulumi from "@pulumi/pulumi";

/**
 * A secret output of another stack, kept secret here whatever the other stack's state says: idle
 * stacks written before the R2 keys were exported as secrets hold them in plaintext, and a plaintext
 * reference output would reach this stack's inputs, state and previews in clear.
 */
export function secretReference(ref: pulumi.StackReference, name: string): pulumi.Output<string> {
  return pulumi.secret(ref.requireOutput(name) as pulumi.Output<string>);
}
