// Verda resources for Pulumi programs and components.
export { Instance, instanceProvider, type InstanceArgs, type InstanceInputs, type InstanceOutputs } from "./instance";
export { Volume, volumeProvider, type VolumeArgs, type VolumeInputs, type VolumeOutputs, type VolumeKind } from "./volume";
export { SshKey, sshKeyProvider, type SshKeyArgs, type SshKeyInputs, type SshKeyOutputs } from "./ssh-key";
export { StartupScript, startupScriptProvider, type StartupScriptArgs, type StartupScriptInputs, type StartupScriptOutputs } from "./startup-script";
