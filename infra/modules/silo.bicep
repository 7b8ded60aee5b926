// One silo: a container app with exactly one replica (Orleans' guidance for Container Apps). Container Apps gives no
// documented, stable address to each replica of a scaled app, so every silo is its own app and advertises the
// environment's private IP with ports of its own: TCP ingress maps those exposed ports to the ports the silo listens
// on inside the container (11111 silo-to-silo, 30000 client gateway, 8080 HTTP).

@description('Azure region.')
param location string

@description('Name of the container app.')
param name string

@description('The silo\'s name in the cluster (Orleans:Name).')
param siloName string

@description('Resource id of the Container Apps environment.')
param environmentId string

@description('The environment\'s private IP, which this silo advertises.')
param advertisedIPAddress string

@description('The silo-to-silo port this silo advertises (unique in the environment).')
param siloPort int

@description('The client gateway port this silo advertises (unique in the environment).')
param gatewayPort int

@description('The port of the silo\'s HTTP endpoints as exposed in the environment (unique in the environment).')
param httpPort int

@description('Container image of the silo.')
param image string

@description('Login server of the registry the image comes from; empty for a public image.')
param registryServer string

@description('Resource id of the silos\' user-assigned managed identity.')
param identityId string

@description('Client id of that identity (AZURE_CLIENT_ID, which DefaultAzureCredential picks up).')
param identityClientId string

@description('Orleans cluster id.')
param clusterId string

@description('Orleans service id.')
param serviceId string

@description('Name of the Azure Cache for Redis holding the membership table; empty: the membership table is in the storage account\'s Azure Table storage.')
param redisName string = ''

@description('Name of the platform\'s storage account (checkpoints, control state, membership table).')
param checkpointAccountName string

@description('Table of Orleans\' membership in the storage account (when redisName is empty).')
param membershipTableName string = 'OrleansSiloInstances'

@description('Blob container of the control state (Orleans grain storage platform-state and PubSubStore), when stateStorageName is empty.')
param grainStateContainerName string = 'grainstate'

@description('Blob container of the checkpoints.')
param checkpointContainerName string

@description('State backend of jobs that do not choose one.')
param defaultStateBackend string

@description('Name under which the environment knows the shared state share; empty: the control state is in Azure Blob storage.')
param stateStorageName string

@description('Where the shared state share is mounted in the container.')
param stateMountPath string

@description('CPU cores of the silo container.')
param cpu string

@description('Memory of the silo container (for example 2Gi; Consumption allows 2Gi per core).')
param memory string

param tags object = {}

@description('The admin token the silo\'s REST API, web UI and Orleans Dashboard require (Silo:Http:AdminToken): it listens beyond loopback.')
@secure()
param adminToken string

// Ports inside the container: the same in every silo.
var siloTargetPort = 11111
var gatewayTargetPort = 30000
var httpTargetPort = 8080

var withSharedState = !empty(stateStorageName)
var withRedis = !empty(redisName)

resource redis 'Microsoft.Cache/redis@2024-11-01' existing = if (withRedis) {
  name: redisName
}

// The storage account's endpoints: a bare endpoint URI as a connection string makes the silo sign in with its managed
// identity (AZURE_CLIENT_ID), as .NET Aspire gives an Azure storage resource to a project.
var blobEndpoint = 'https://${checkpointAccountName}.blob.${environment().suffixes.storage}'
var tableEndpoint = 'https://${checkpointAccountName}.table.${environment().suffixes.storage}'

// What the silo reads (see src/Silo/Hosting/SiloConfiguration.cs, AzureStorageConnections.cs and the Platform section of
// the silo's options): Orleans' keys as .NET Aspire's WithClustering and WithGrainStorage set them.
var orleansSettings = [
  { name: 'Orleans__ClusterId', value: clusterId }
  { name: 'Orleans__ServiceId', value: serviceId }
  { name: 'Orleans__Name', value: siloName }
  // Orleans' Azure Table (or Redis) clustering resolves the TableServiceClient (IConnectionMultiplexer) that the silo host
  // registers under this key from ConnectionStrings:clustering, as Aspire's client integrations would.
  { name: 'Orleans__Clustering__ProviderType', value: withRedis ? 'Redis' : 'AzureTableStorage' }
  { name: 'Orleans__Clustering__ServiceKey', value: 'clustering' }
  withRedis
    ? { name: 'ConnectionStrings__clustering', secretRef: 'clustering-connection' }
    : { name: 'ConnectionStrings__clustering', value: tableEndpoint }
  // Advertised: the environment's IP and this silo's own exposed ports (silo i: 11111 + i, 30000 + i), stored in the
  // membership table and dialled by other silos and clients. Listening: 11111 and 30000 inside every container.
  { name: 'Orleans__Endpoints__AdvertisedIPAddress', value: advertisedIPAddress }
  { name: 'Orleans__Endpoints__SiloPort', value: string(siloPort) }
  { name: 'Orleans__Endpoints__GatewayPort', value: string(gatewayPort) }
  { name: 'Orleans__Endpoints__SiloListeningEndpoint', value: '0.0.0.0:${siloTargetPort}' }
  { name: 'Orleans__Endpoints__GatewayListeningEndpoint', value: '0.0.0.0:${gatewayTargetPort}' }
  { name: 'ASPNETCORE_URLS', value: 'http://+:${httpTargetPort}' }
  // Listening on every interface: the mutating REST endpoints, the web UI and the dashboard need this token.
  { name: 'Silo__Http__AdminToken', secretRef: 'admin-token' }
  { name: 'AZURE_CLIENT_ID', value: identityClientId }
]

// Orleans' default table name, set so that the table the storage module creates and the one the silos use are one.
var membershipSettings = withRedis ? [] : [
  { name: 'Orleans__Clustering__TableName', value: membershipTableName }
]

// The control state (job managers, checkpoint coordinators, the job registry, stream subscriptions) in Orleans' Azure
// Blob grain storage, one container for both, unless it is on the shared mount (Platform__StateDirectory below).
var grainStorageSettings = withSharedState ? [] : [
  { name: 'Orleans__GrainStorage__platform-state__ProviderType', value: 'AzureBlobStorage' }
  { name: 'Orleans__GrainStorage__platform-state__ServiceKey', value: 'grainstate' }
  { name: 'Orleans__GrainStorage__platform-state__ContainerName', value: grainStateContainerName }
  { name: 'Orleans__GrainStorage__PubSubStore__ProviderType', value: 'AzureBlobStorage' }
  { name: 'Orleans__GrainStorage__PubSubStore__ServiceKey', value: 'grainstate' }
  { name: 'Orleans__GrainStorage__PubSubStore__ContainerName', value: grainStateContainerName }
  { name: 'ConnectionStrings__grainstate', value: blobEndpoint }
]

var platformSettings = [
  { name: 'Platform__DefaultCheckpointStorage', value: 'AzureBlob' }
  { name: 'Platform__AzureBlob__ServiceUri', value: blobEndpoint }
  { name: 'Platform__AzureBlob__ContainerName', value: checkpointContainerName }
  // Savepoints in the same container, under savepoints/ (Platform:AzureBlob:SavepointPrefix): they outlive the job and
  // any silo, and can be copied to another prefix or an allow-listed container and restored from there.
  { name: 'Platform__SavepointStorage', value: 'AzureBlob' }
  { name: 'Platform__DefaultStateBackend', value: defaultStateBackend }
  // Control state on the shared mount, when there is one, which every silo must see; otherwise it is in Azure Blob
  // storage and nothing is written here. The savepoint directory is used only by requests that name a directory
  // rather than a blob URL (on the container's disk without the mount).
  { name: 'Platform__StateDirectory', value: withSharedState ? '${stateMountPath}/state' : 'data/state' }
  { name: 'Platform__SavepointDirectory', value: withSharedState ? '${stateMountPath}/savepoints' : 'data/savepoints' }
]


var probes = [
  {
    type: 'Startup'
    httpGet: {
      path: '/health/startup'
      port: httpTargetPort
      scheme: 'HTTP'
    }
    initialDelaySeconds: 2
    periodSeconds: 5
    timeoutSeconds: 3
    failureThreshold: 36 // three minutes to join the cluster
  }
  {
    type: 'Readiness'
    httpGet: {
      path: '/health/ready'
      port: httpTargetPort
      scheme: 'HTTP'
    }
    periodSeconds: 5
    timeoutSeconds: 3
    failureThreshold: 6
    successThreshold: 1
  }
  {
    type: 'Liveness'
    httpGet: {
      path: '/health/live'
      port: httpTargetPort
      scheme: 'HTTP'
    }
    periodSeconds: 10
    timeoutSeconds: 3
    failureThreshold: 3
  }
]

resource silo 'Microsoft.App/containerApps@2025-01-01' = {
  name: name
  location: location
  tags: union(tags, { 'platform-silo': siloName })
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    environmentId: environmentId
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      // TCP ingress. "external" is relative to the environment, which is internal: the ports are reachable from the
      // virtual network (other silos, clients such as the platform CLI), never from the internet.
      ingress: {
        external: true
        transport: 'tcp'
        targetPort: siloTargetPort
        exposedPort: siloPort
        additionalPortMappings: [
          {
            external: true
            targetPort: gatewayTargetPort
            exposedPort: gatewayPort
          }
          {
            external: true
            targetPort: httpTargetPort
            exposedPort: httpPort
          }
        ]
      }
      registries: empty(registryServer) ? [] : [
        {
          server: registryServer
          identity: identityId
        }
      ]
      secrets: concat([
        {
          name: 'admin-token'
          value: adminToken
        }
      ], withRedis ? [
        {
          name: 'clustering-connection'
          value: '${redis!.properties.hostName}:${redis!.properties.sslPort},password=${redis!.listKeys().primaryKey},ssl=True,abortConnect=False'
        }
      ] : [])
    }
    template: {
      terminationGracePeriodSeconds: 60
      containers: [
        {
          name: 'silo'
          image: image
          env: concat(orleansSettings, membershipSettings, grainStorageSettings, platformSettings)
          probes: probes
          resources: {
            cpu: json(cpu)
            memory: memory
          }
          volumeMounts: withSharedState ? [
            {
              volumeName: 'platform-state'
              mountPath: stateMountPath
            }
          ] : []
        }
      ]
      // Exactly one replica, always: a second replica would share this silo's advertised endpoint.
      scale: {
        minReplicas: 1
        maxReplicas: 1
      }
      volumes: withSharedState ? [
        {
          name: 'platform-state'
          storageType: 'AzureFile'
          storageName: stateStorageName
          // The image runs as the non-root user 'app' (uid and gid 1654); SMB mounts belong to root otherwise.
          mountOptions: 'uid=1654,gid=1654,dir_mode=0770,file_mode=0660'
        }
      ] : []
    }
  }
}

@description('Name of the container app.')
output name string = silo.name

@description('The silo\'s advertised silo-to-silo endpoint.')
output siloEndpoint string = '${advertisedIPAddress}:${siloPort}'

@description('The silo\'s advertised gateway endpoint.')
output gatewayEndpoint string = '${advertisedIPAddress}:${gatewayPort}'
