// Azure Container Registry for the silo image, pulled by the silos' managed identity (AcrPull); no admin user.

@description('Azure region.')
param location string

@description('Name of the registry (5-50 letters and digits, globally unique).')
@minLength(5)
@maxLength(50)
param name string

@description('Principal (object) id of the identity that pulls images.')
param pullPrincipalId string

param tags object = {}

// AcrPull: pull images.
var acrPullRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '7f951dda-4ed3-4680-a7ca-43fe172d538d')

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    adminUserEnabled: false
  }
}

resource pull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, pullPrincipalId, acrPullRoleId)
  scope: registry
  properties: {
    principalId: pullPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: acrPullRoleId
  }
}

@description('Name of the registry.')
output name string = registry.name

@description('Login server of the registry (<name>.azurecr.io).')
output loginServer string = registry.properties.loginServer

@description('Id of the AcrPull role assignment (deploy silos after it).')
output pullAccessId string = pull.id
