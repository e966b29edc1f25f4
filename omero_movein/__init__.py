"""Move a lab's PNG image folders and cell-tracking masks into OMERO.

``omero-png2tiff`` turns position folders of PNG planes into OME-TIFFs;
``omero-masks2rois`` turns label masks into ROIs, written into an OME-TIFF's
OME-XML and/or uploaded to an image on an OMERO server.
"""
