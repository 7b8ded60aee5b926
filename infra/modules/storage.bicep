// Checkpoint storage: a storage account whose blob container holds the platform's checkpoints, reached with the silos'
// managed identity (shared keys are disabled on it). Optionally a second account with the Azure Files share the
// silos mount for their shared control state (SMB mounts need the account key, so it lives apart from checkpoints).
// With publicNetworkAccess 'Disabled' neither account answers on its public endpoints: the data reaches them only
// through private endpoints (main.bicep adds them). Creating containers and shares is a management operation (Azure
// Resource Manager), which works either way.

@description('Azure region.')
param location string

@description('Name of the checkpoint storage account (3-24 lowercase letters and digits, globally unique).')
@minLength(3)
@maxLength(24)
param checkpointAccountName string

@description('Name of the blob container for checkpoints.')
param checkpointContainerName string

@description('Principal (object) id of the silos\' managed identity.')
param siloPrincipalId string

@description('Name of the storage account holding the shared state share; empty for none.')
@maxLength(24)
param stateAccountName string = ''

@description('Name of the shared state file share.')
param stateShareName string = 'platform-state'

@description('Size of the shared state share in GiB.')
@minValue(1)
param stateShareQuotaGiB int = 100

@description('Whether the accounts accept data requests on their public endpoints; Disabled: only through private endpoints.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

param tags object = {}

// Storage Blob Data Contributor: read, write and delete blobs.
var blobDataContributorRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')

resource checkpointAccount 'Microsoft.Storage/storageAccounts@2025-01-01' = {
  name: checkpointAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_ZRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: publicNetworkAccess
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-01-01' = {
  parent: checkpointAccount
  name: 'default'
}

resource checkpointContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = {
  parent: blobService
  name: checkpointContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource checkpointAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(checkpointContainer.id, siloPrincipalId, blobDataContributorRoleId)
  scope: checkpointContainer
  properties: {
    principalId: siloPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: blobDataContributorRoleId
  }
}

resource stateAccount 'Microsoft.Storage/storageAccounts@2025-01-01' = if (!empty(stateAccountName)) {
  name: stateAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_ZRS'
  }
  properties: {
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: publicNetworkAccess
  }
}

resource fileService 'Microsoft.Storage/storageAccounts/fileServices@2025-01-01' = if (!empty(stateAccountName)) {
  parent: stateAccount
  name: 'default'
}

resource stateShare 'Microsoft.Storage/storageAccounts/fileServices/shares@2025-01-01' = if (!empty(stateAccountName)) {
  parent: fileService
  name: stateShareName
  properties: {
    accessTier: 'TransactionOptimized'
    enabledProtocols: 'SMB'
    shareQuota: stateShareQuotaGiB
  }
}

@description('Name of the checkpoint storage account.')
output checkpointAccountName string = checkpointAccount.name

@description('Resource id of the checkpoint storage account (target of its blob private endpoint).')
output checkpointAccountId string = checkpointAccount.id

@description('Blob endpoint of the checkpoint storage account (https://<account>.blob.<suffix>/).')
output checkpointBlobEndpoint string = checkpointAccount.properties.primaryEndpoints.blob

@description('Name of the checkpoint container.')
output checkpointContainerName string = checkpointContainer.name

@description('Id of the role assignment that lets the silos write checkpoints (deploy silos after it).')
output checkpointAccessId string = checkpointAccess.id

@description('Name of the shared state storage account; empty when there is none.')
output stateAccountName string = empty(stateAccountName) ? '' : stateAccount.name

@description('Resource id of the shared state storage account (target of its file private endpoint); empty when there is none.')
output stateAccountId string = empty(stateAccountName) ? '' : stateAccount.id

@description('Name of the shared state share; empty when there is none.')
output stateShareName string = empty(stateAccountName) ? '' : stateShare.name
