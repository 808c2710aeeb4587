// Verda resources for Pulumi programs and components.
export { Instance, instanceProvider, type InstanceArgs, type InstanceInputs, type InstanceOutputs } from "./instance";
export { Volume, volumeProvider, type VolumeArgs, type VolumeInputs, type VolumeOutputs, type VolumeKind } from "./volume";
export { SshKey, sshKeyProvider, type SshKeyArgs, type SshKeyInputs, type SshKeyOutputs } from "./ssh-key";
export { StartupScript, startupScriptProvider, type StartupScriptArgs, type StartupScriptInputs, type StartupScriptOutputs } from "./startup-script";
export { ContainerDeployment, containerDeploymentProvider, type ContainerDeploymentArgs, type ContainerDeploymentInputs, type ContainerDeploymentOutputs, type ContainerInput, type MountInput, type ScalingInput } from "./container-deployment";
export { Secret, secretProvider, FileSecret, fileSecretProvider, type SecretArgs, type SecretInputs, type SecretOutputs, type FileSecretArgs, type FileSecretInputs, type FileSecretOutputs } from "./secret";
export { RegistryCredentials, registryCredentialsProvider, type RegistryCredentialsArgs, type RegistryCredentialsInputs, type RegistryCredentialsOutputs } from "./registry-credentials";
export { DeploymentScaling, deploymentScalingProvider, zeroScaling, type DeploymentScalingArgs, type DeploymentScalingInputs } from "./deployment-scaling";
