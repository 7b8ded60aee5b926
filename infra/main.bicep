// The streaming platform on Azure Container Apps: N silos, each a container app with exactly one replica, in an
// internal environment on a virtual network; one storage account reached with the silos' managed identity (no keys)
// for Orleans' membership (Azure Table storage), the control state (Orleans' Azure Blob grain storage) and the
// checkpoints (blobs); Log Analytics for logs, and a container registry for the silo image. Optional: Redis for the
// membership instead (redisClustering), an Azure Files share for the control state instead (sharedState). With
// privateNetworking (the default) the services have their public endpoints disabled and are reached through private
// endpoints in the virtual network. See infra/README.md.

targetScope = 'resourceGroup'

@description('Prefix of every resource name: 3-12 lowercase letters, digits and hyphens.')
@minLength(3)
@maxLength(12)
param baseName string = 'platform'

@description('Azure region of every resource.')
param location string = resourceGroup().location

@description('Number of silos: one container app with one replica each (silo-0 ... silo-<n-1>).')
@minValue(1)
@maxValue(20)
param siloCount int = 3

@description('Whether to deploy the silo apps. Deploy once with false to create the registry, push the image, then deploy with true.')
param deploySilos bool = true

@description('Full silo image reference; empty for <registry>/platform-silo:<siloImageTag> in the registry this template creates.')
param siloImage string = ''

@description('Tag of the silo image in the registry this template creates (when siloImage is empty).')
param siloImageTag string = 'latest'

@description('Orleans cluster id (silos and clients of one cluster share it).')
param clusterId string = 'platform'

@description('Orleans service id (outlives deployments; keys persisted state).')
param serviceId string = 'platform'

@description('State backend of jobs that do not choose one.')
@allowed([
  'Heap'
  'RocksDb'
])
param defaultStateBackend string = 'Heap'

@description('Whether to keep the control state (job managers, checkpoint coordinators, stream subscriptions) on an Azure Files share that every silo mounts, instead of in Orleans\' Azure Blob grain storage in the storage account.')
param sharedState bool = false

@description('Whether to keep Orleans\' membership table in an Azure Cache for Redis instead of Azure Table storage in the storage account.')
param redisClustering bool = false

@description('Where the shared state share is mounted in each silo container.')
param stateMountPath string = '/mnt/platform'

@description('CPU cores per silo.')
param siloCpu string = '1.0'

@description('Memory per silo (Consumption allows 2Gi per core).')
param siloMemory string = '2Gi'

@description('Azure Cache for Redis tier for the membership table (with redisClustering).')
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param redisSku string = 'Standard'

@description('Azure Cache for Redis size within the tier.')
@minValue(0)
@maxValue(6)
param redisCapacity int = 1

@description('Address space of the virtual network.')
param vnetAddressPrefix string = '10.42.0.0/16'

@description('Subnet of the Container Apps environment (at least /27).')
param environmentSubnetPrefix string = '10.42.0.0/23'

@description('Subnet of the private endpoints of the storage accounts and Redis (created also when privateNetworking is false).')
param privateEndpointSubnetPrefix string = '10.42.2.0/27'

@description('Whether Redis and the storage accounts are reachable only through private endpoints in the virtual network (public network access disabled). false: they keep their public endpoints (key or Entra ID authentication still required), for a simpler deployment.')
param privateNetworking bool = true

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('Tags on every resource.')
param tags object = {}

@description('The silos\' admin token (Silo:Http:AdminToken, at least 16 characters): their HTTP endpoints listen beyond loopback, so the REST API\'s changes, the web UI and the Orleans Dashboard require it.')
@secure()
param adminToken string

// Ports the silos advertise: silo i gets siloPortBase + i, gatewayPortBase + i, httpPortBase + i (exposed ports of
// TCP ingress must be unique in the environment); inside every container they are 11111, 30000 and 8080.
var siloPortBase = 11111
var gatewayPortBase = 30000
var httpPortBase = 8080

var publicNetworkAccess = privateNetworking ? 'Disabled' : 'Enabled'

var prefix = toLower(baseName)
var compactPrefix = replace(prefix, '-', '')
var suffix = take(uniqueString(subscription().subscriptionId, resourceGroup().id, prefix), 6)
var checkpointContainerName = 'checkpoints'
var grainStateContainerName = 'grainstate'
var membershipTableName = 'OrleansSiloInstances'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${prefix}-silo-id'
  location: location
  tags: tags
}

module network 'modules/network.bicep' = {
  name: '${prefix}-network'
  params: {
    location: location
    name: '${prefix}-vnet'
    addressPrefix: vnetAddressPrefix
    environmentSubnetPrefix: environmentSubnetPrefix
    privateEndpointSubnetPrefix: privateEndpointSubnetPrefix
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: '${prefix}-storage'
  params: {
    location: location
    checkpointAccountName: '${take(compactPrefix, 12)}chk${suffix}'
    checkpointContainerName: checkpointContainerName
    grainStateContainerName: grainStateContainerName
    membershipTableName: membershipTableName
    siloPrincipalId: identity.properties.principalId
    stateAccountName: sharedState ? '${take(compactPrefix, 12)}st${suffix}' : ''
    publicNetworkAccess: publicNetworkAccess
    tags: tags
  }
}

module redis 'modules/redis.bicep' = if (redisClustering) {
  name: '${prefix}-redis'
  params: {
    location: location
    name: '${prefix}-redis-${suffix}'
    skuName: redisSku
    capacity: redisCapacity
    publicNetworkAccess: publicNetworkAccess
    tags: tags
  }
}

// Private endpoints (privateNetworking): one per service, each with its private DNS zone linked to the network, so the
// usual host names (<account>.blob.<suffix>, <account>.table.<suffix>, <cache>.redis.cache.windows.net,
// <account>.file.<suffix>) resolve to private IPs inside it. The silos and the environment's Azure Files mount keep
// using those host names.
module redisPrivateEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking && redisClustering) {
  name: '${prefix}-redis-pe'
  params: {
    location: location
    name: '${prefix}-redis-pe'
    subnetId: network.outputs.privateEndpointSubnetId
    targetId: redis!.outputs.id
    groupId: 'redisCache'
    zoneName: 'privatelink.redis.cache.windows.net'
    vnetId: network.outputs.vnetId
    tags: tags
  }
}

module checkpointPrivateEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking) {
  name: '${prefix}-chk-blob-pe'
  params: {
    location: location
    name: '${prefix}-chk-blob-pe'
    subnetId: network.outputs.privateEndpointSubnetId
    targetId: storage.outputs.checkpointAccountId
    groupId: 'blob'
    zoneName: 'privatelink.blob.${az.environment().suffixes.storage}'
    vnetId: network.outputs.vnetId
    tags: tags
  }
}

module tablePrivateEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking && !redisClustering) {
  name: '${prefix}-table-pe'
  params: {
    location: location
    name: '${prefix}-table-pe'
    subnetId: network.outputs.privateEndpointSubnetId
    targetId: storage.outputs.checkpointAccountId
    groupId: 'table'
    zoneName: 'privatelink.table.${az.environment().suffixes.storage}'
    vnetId: network.outputs.vnetId
    tags: tags
  }
}

module statePrivateEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking && sharedState) {
  name: '${prefix}-st-file-pe'
  params: {
    location: location
    name: '${prefix}-st-file-pe'
    subnetId: network.outputs.privateEndpointSubnetId
    targetId: storage.outputs.stateAccountId
    groupId: 'file'
    zoneName: 'privatelink.file.${az.environment().suffixes.storage}'
    vnetId: network.outputs.vnetId
    tags: tags
  }
}

module registry 'modules/registry.bicep' = {
  name: '${prefix}-registry'
  params: {
    location: location
    name: '${compactPrefix}acr${suffix}'
    pullPrincipalId: identity.properties.principalId
    tags: tags
  }
}

module environment 'modules/environment.bicep' = {
  name: '${prefix}-environment'
  params: {
    location: location
    name: '${prefix}-env'
    logAnalyticsName: '${prefix}-logs'
    logRetentionInDays: logRetentionInDays
    subnetId: network.outputs.environmentSubnetId
    vnetId: network.outputs.vnetId
    stateStorageAccountName: storage.outputs.stateAccountName
    stateShareName: storage.outputs.stateShareName
    tags: tags
  }
}

var useOwnRegistry = empty(siloImage)
var image = useOwnRegistry ? '${registry.outputs.loginServer}/platform-silo:${siloImageTag}' : siloImage

// Each silo waits for the registry and storage modules (it uses their outputs), so the identity's AcrPull, blob and
// table role assignments exist before a silo pulls its image, joins the membership table or writes state, and
// (dependsOn, no output is used) for the private endpoints, their DNS records and zone links, so that its first
// connection to blob and table storage, Redis and the share resolves to a private IP: with public access disabled, the public IP would refuse it. One silo at a time: an
// update restarts a silo (its new revision takes over its endpoint), and jobs recover from a checkpoint after each,
// not all at once.
@batchSize(1)
module silos 'modules/silo.bicep' = [for i in range(0, siloCount): if (deploySilos) {
  name: '${prefix}-silo-${i}'
  dependsOn: [
    redisPrivateEndpoint
    checkpointPrivateEndpoint
    tablePrivateEndpoint
    statePrivateEndpoint
  ]
  params: {
    location: location
    name: '${prefix}-silo-${i}'
    siloName: 'silo-${i}'
    environmentId: environment.outputs.environmentId
    advertisedIPAddress: environment.outputs.staticIp
    siloPort: siloPortBase + i
    gatewayPort: gatewayPortBase + i
    httpPort: httpPortBase + i
    image: image
    registryServer: useOwnRegistry ? registry.outputs.loginServer : ''
    identityId: identity.id
    identityClientId: identity.properties.clientId
    clusterId: clusterId
    serviceId: serviceId
    redisName: redisClustering ? redis!.outputs.name : ''
    checkpointAccountName: storage.outputs.checkpointAccountName
    checkpointContainerName: storage.outputs.checkpointContainerName
    grainStateContainerName: storage.outputs.grainStateContainerName
    membershipTableName: storage.outputs.membershipTableName
    defaultStateBackend: defaultStateBackend
    stateStorageName: environment.outputs.stateStorageName
    stateMountPath: stateMountPath
    cpu: siloCpu
    memory: siloMemory
    adminToken: adminToken
    tags: tags
  }
}]

@description('Name of the Container Apps environment.')
output environmentName string = environment.outputs.environmentName

@description('Resource id of the Container Apps environment.')
output environmentId string = environment.outputs.environmentId

@description('The environment\'s private IP, which every silo advertises.')
output environmentStaticIp string = environment.outputs.staticIp

@description('Names of the silo container apps.')
output siloAppNames string[] = [for i in range(0, deploySilos ? siloCount : 0): silos[i]!.outputs.name]

@description('Gateway endpoints of the silos, for Orleans clients in the virtual network (platform --gateway).')
output gatewayEndpoints string[] = [for i in range(0, deploySilos ? siloCount : 0): silos[i]!.outputs.gatewayEndpoint]

@description('Name of the storage account (checkpoints, control state, membership table).')
output checkpointStorageAccount string = storage.outputs.checkpointAccountName

@description('Name of the control state blob container (Orleans grain storage platform-state and PubSubStore).')
output grainStateContainer string = storage.outputs.grainStateContainerName

@description('Name of the checkpoint blob container.')
output checkpointContainer string = storage.outputs.checkpointContainerName

@description('Login server of the container registry (push the silo image here).')
output registryLoginServer string = registry.outputs.loginServer

@description('Name of the container registry (az acr build --registry).')
output registryName string = registry.outputs.name

@description('Client id of the silos\' managed identity.')
output siloIdentityClientId string = identity.properties.clientId
